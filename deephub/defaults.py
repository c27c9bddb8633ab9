"""The one place that lists every config key the engine reads, with defaults.

Variants start from `base_config()` / `feeder_config()` and override what they
need, so a variant file plus this module is the whole spec. Every field has a
comment; durations carry their unit in the name (`_steps`, `_secs`).
"""

import ml_collections
from ml_collections import config_dict

# A field that may be None but otherwise holds the given type; overrides on the
# command line are parsed as that type.
optional = config_dict.placeholder


def feeder_config(**overrides) -> ml_collections.ConfigDict:
  """Returns a TFRecordExamplesFeeder config with the legacy keys.

  Args:
    **overrides: values replacing the defaults below (same key names).

  Returns:
    An unlocked ConfigDict; `base_config` locks the whole tree.
  """
  config = ml_collections.ConfigDict()
  # Feeder class; 'TFRecordExamplesFeeder' reads tf.Example records.
  config.type = "TFRecordExamplesFeeder"
  # Global batch size (examples per step).
  config.batch_size = 32
  # Shuffle file order and examples (buffer of `shuffle_buffer_size`).
  config.shuffle = False
  # Examples held in the shuffle buffer.
  config.shuffle_buffer_size = 10_000
  # Globs of TFRecord files; every pattern must match at least one file.
  config.file_patterns = []
  # Use only the first N examples of each pass; -1 uses all.
  config.max_examples = -1
  # Drop a last batch smaller than batch_size.
  config.drop_remainder = False
  # '' for plain TFRecord files, 'GZIP' for compressed ones.
  config.compression = ""
  # Files read in parallel by the interleave.
  config.num_parallel_reads = 8
  # Keep record order reproducible across runs (slower when False is possible).
  config.deterministic = True
  # {name: {type: FixedLenFeature|VarLenFeature, shape: [...], dtype: ...}}.
  config.features_map = ml_collections.ConfigDict()
  # Same shape as features_map; empty for a feeder without labels.
  config.labels_map = ml_collections.ConfigDict()
  config.update(overrides)
  return config


def base_config() -> ml_collections.ConfigDict:
  """Returns the model / train / runtime skeleton shared by all variants.

  Variants set `model.type`, the model's own parameters and the feeders, then
  call `.lock()` (done by the loader too) so that typos fail loudly.
  """
  config = ml_collections.ConfigDict()

  config.model = ml_collections.ConfigDict()
  # 'file:Class' from deephub/models/registry, or 'package.module:Class'.
  config.model.type = ""
  # Where checkpoints, summaries and the resolved config go; '' means
  # runs/<variant> under the current folder.
  config.model.model_dir = ""

  config.train = ml_collections.ConfigDict()
  # Passes over the train feeder's files; converted to steps once.
  config.train.epochs = 1
  # Exactly one of the two checkpoint periods must be set.
  config.train.save_checkpoint_steps = optional(int)
  config.train.save_checkpoint_secs = optional(int)
  # Checkpoints kept in model_dir (older ones are deleted).
  config.train.keep_checkpoint_max = 5
  # Write training summaries on crossing a multiple of this step count.
  config.train.save_summary_steps = 100
  # Evaluate every this many seconds of training (and once at the end).
  config.train.validation_secs = optional(int)
  # Also evaluate on crossing a multiple of this step count; None disables.
  config.train.validation_steps = optional(int)
  # Train steps run inside one compiled loop between host-side work
  # (logging, checkpoints); larger means less per-step Python overhead.
  config.train.steps_per_loop = 100
  # Log progress (step, loss, steps/s, ETA) on crossing this step count.
  config.train.log_step_count_steps = 100
  # Checkpoint file or model_dir to initialise from when model_dir has no
  # checkpoint yet; '' disables warm start.
  config.train.warm_start_check_point = ""
  # Regex over trainable variable names to warm-start (Estimator's default).
  config.train.warm_start_variables_regex = ".*"
  # {name in this model: name in the warm-start checkpoint} for renamed variables.
  config.train.warm_start_var_name_map = ml_collections.ConfigDict()
  config.train.train_feeder = feeder_config()
  config.train.eval_feeder = feeder_config()

  config.runtime = ml_collections.ConfigDict()
  # Compile the per-batch train step with XLA on GPUs and TPUs.
  config.runtime.xla = True
  # Also use XLA on a machine with only CPUs. Off: TensorFlow's own CPU
  # kernels measured faster there (benchmarks/README.md).
  config.runtime.xla_on_cpu = False
  # Seed for weight initialisation and shuffling.
  config.runtime.seed = 42
  return config
