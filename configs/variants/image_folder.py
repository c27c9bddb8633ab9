"""Image folder variant: SmallCNN on the shards of `deep preprocessor image`.

From the folder holding `photos/train/<class>/*.jpg` (and `photos/validation/...`):
  deep preprocessor image --train_directory photos/train \
    --validation_directory photos/validation --output_directory data/images
  deep trainer train image_folder -p model.num_classes N
where N is the number of lines of data/images/labels.txt (the preprocessor
prints the full command). Images are resized to 64x64 RGB and scaled to
[-1, 1]; it trains 10 epochs into runs/image_folder, evaluating on the
validation shards every 10 minutes and at the end (`accuracy`).
"""

from deephub.config import defaults


def _image_feeder(split: str):
  return defaults.feeder_config(
    batch_size=32,
    # Written by `deep preprocessor image --output_directory data/images`,
    # relative to the folder you run from.
    file_patterns=[f"data/images/{split}-*"],
    features_map={
      "image/encoded": {
        "type": "ImageFeature",
        # Every image becomes 64x64 RGB (grayscale is expanded), so batches stack.
        "channels": 3,
        "resize_height": 64,
        "resize_width": 64,
        "enforced_dtype": "float32",
        # Pixels in [-1, 1].
        "standard_scaling": True,
      }
    },
    # Labels start at 0: line i of labels.txt is label i.
    labels_map={"image/class/label": {"type": "FixedLenFeature", "shape": [], "dtype": "int64"}},
  )


def get_config():
  config = defaults.base_config()

  config.model.type = "cnn:SmallCNN"
  # Classes: the line count of labels.txt. 0 stops with an error saying so.
  config.model.num_classes = 0
  # Adam learning rate.
  config.model.learning_rate = 0.001
  # Output channels of each stride-2 conv layer (64 -> 32 -> 16 -> 8 pixels).
  config.model.filters = [16, 32, 64]
  # Height and width of every conv kernel.
  config.model.kernel_size = 3

  config.train.epochs = 10
  config.train.save_checkpoint_steps = 500
  config.train.validation_secs = 600
  config.train.save_summary_steps = 50
  config.train.log_step_count_steps = 50
  config.train.train_feeder = _image_feeder("train")
  config.train.train_feeder.shuffle = True
  config.train.train_feeder.shuffle_buffer_size = 1000
  config.train.eval_feeder = _image_feeder("validation")
  return config
