"""The one place that lists every config key the engine reads, with defaults.

Variants start from `base_config()` / `feeder_config()` and override what they
need, so a variant file plus this module is the whole spec. Every field has a
comment; durations carry their unit in the name (`_steps`, `_secs`).
"""

import ml_collections
from ml_collections import config_dict


def optional(field_type: type, default=None) -> config_dict.FieldReference:
  """A field that may be None but otherwise holds `field_type` (overrides are parsed as that type).

  Only these fields take None: engine/config_values.py refuses it elsewhere.
  """
  return config_dict.FieldReference(default, field_type=field_type)


def feeder_config(**overrides) -> ml_collections.ConfigDict:
  """Returns a TFRecordExamplesFeeder config with the legacy keys.

  Args:
    **overrides: values replacing the defaults below (same key names).

  Returns:
    An unlocked ConfigDict; `base_config` locks the whole tree.
  """
  config = ml_collections.ConfigDict()
  # Feeder class; 'TFRecordExamplesFeeder' reads tf.Example records,
  # 'ParquetExamplesFeeder' Parquet columns (needs the io extra), or
  # 'package.module:Class' a user's own class providing deephub.io.feeder.Feeder.
  config.type = "TFRecordExamplesFeeder"
  # Keyword arguments of a user's own feeder class (its only arguments, with
  # seed= when it takes one); deephub's feeders take the keys below instead.
  config.init_args = ml_collections.ConfigDict()
  # Global batch size: examples per step summed over all replicas and workers;
  # each replica gets batch_size / replicas, so it must divide evenly.
  config.batch_size = 32
  # False: file order. True: shuffle file order, then examples in a buffer of
  # `shuffle_buffer_size` (cheap, but data written in label order stays
  # poorly mixed). 'global': a full random permutation of every record per
  # epoch, read by record offset (uncompressed files and the native ops; a
  # record index of 16 bytes per record, see runtime.max_index_bytes).
  # Typed `object` so that the field holds a bool or the string 'global'.
  config.shuffle = config_dict.FieldReference(False, field_type=object)
  # Examples held in the shuffle buffer.
  config.shuffle_buffer_size = 10_000
  # Globs of data files, local, gs:// or (io extra) s3://, hdfs://, az://;
  # every pattern must match at least one file; a `**` component matches
  # folders at any depth.
  config.file_patterns = []
  # Use only the first N examples of each pass; -1 uses all.
  config.max_examples = -1
  # Drop a last batch smaller than batch_size.
  config.drop_remainder = False
  # '' for plain TFRecord files, 'GZIP' or 'ZLIB' for compressed ones.
  config.compression = ""
  # Skip the rest of a file at a corrupted or truncated record (logged and
  # summarised) instead of stopping with an error naming the file.
  config.skip_corrupt_records = False
  # Files read in parallel by the interleave.
  config.num_parallel_reads = 8
  # Batches parsed in parallel (the parse map's num_parallel_calls); None lets
  # tf.data's AUTOTUNE choose at run time within the CPU budget, a number
  # fixes it (and takes it out of autotuning).
  config.num_parallel_maps = optional(int)
  # Batches prepared ahead of the train step (the final prefetch buffer);
  # None: AUTOTUNE sizes the buffer, a number fixes it, 0 turns prefetch off.
  config.prefetch = optional(int)
  # Keep record order reproducible across runs (slower when False is possible).
  config.deterministic = True
  # Record counts come from each folder's _tfrecord_metadata.json; True writes
  # missing or stale entries (reading those files) instead of failing.
  config.auto_generate_meta = False
  # {name: {type: FixedLenFeature|VarLenFeature|FixedLenSequenceFeature,
  # shape: [...], dtype: ...}} or {name: {type: ImageFeature, ...}}; see
  # deephub/io/features.py.
  config.features_map = ml_collections.ConfigDict()
  # Same shape as features_map; empty for a feeder without labels.
  config.labels_map = ml_collections.ConfigDict()
  config.update(overrides)
  return config


def exporters_config() -> ml_collections.ConfigDict:
  """Returns the `train.exporters` section: final, best, latest and best-checkpoint exporters, all off.

  Each is built and called through `deephub.engine.exporter` (the interface a
  user's own class in `custom` provides too); engine/exporters.py runs them.
  """
  config = ml_collections.ConfigDict()
  config.final = ml_collections.ConfigDict()
  # Export the final weights to export/<name>/<unix seconds>/; '' disables.
  config.final.name = ""
  config.best = ml_collections.ConfigDict()
  # Export whenever an evaluation beats all earlier ones (Estimator: 'best_exporter'); '' disables.
  config.best.name = ""
  # Eval scalar compared, and its direction.
  config.best.metric = "loss"
  config.best.higher_is_better = False
  # Newest best exports kept; older ones are deleted.
  config.best.exports_to_keep = 5
  config.latest = ml_collections.ConfigDict()
  # Export after every evaluation (Estimator: 'LatestExporter'); '' disables.
  config.latest.name = ""
  # Newest exports kept; older ones are deleted.
  config.latest.exports_to_keep = 5
  config.best_checkpoint_copier = ml_collections.ConfigDict()
  # Copy the best evaluated checkpoints to model_dir/<name>/ (legacy 'best_checkpoints'); '' disables.
  config.best_checkpoint_copier.name = ""
  config.best_checkpoint_copier.metric = "loss"
  config.best_checkpoint_copier.higher_is_better = False
  # Best checkpoints kept in that folder.
  config.best_checkpoint_copier.checkpoints_to_keep = 5
  # A user's own exporters: {key: {type: 'package.module:Class', <its keyword
  # arguments>}}, each called as Class(ExportContext, **arguments) and then like
  # the ones above (the Exporter interface in deephub/engine/exporter.py).
  config.custom = ml_collections.ConfigDict()
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
  # Checkpoints kept in model_dir (older ones are deleted); 0 or None keeps
  # every checkpoint, as Estimator's RunConfig did.
  config.train.keep_checkpoint_max = optional(int, 5)
  # Write training summaries on crossing a multiple of this step count.
  config.train.save_summary_steps = 100
  # Evaluate every this many seconds of training; None evaluates after every
  # checkpoint (as Estimator's throttle_secs did), so early stopping sees each.
  # Training always ends with an evaluation. Needs train.eval_feeder files.
  config.train.validation_secs = optional(int)
  # Also evaluate on crossing a multiple of this step count; None disables.
  config.train.validation_steps = optional(int)
  # Train steps run inside one compiled loop between host-side work
  # (logging, checkpoints); larger means less per-step Python overhead.
  # Evaluation runs this many batches per compiled call; SIGTERM and Ctrl-C
  # are acted on between loops and between those calls.
  config.train.steps_per_loop = 100
  # Log progress (step, loss, steps/s, ETA) on crossing this step count; None logs none.
  config.train.log_step_count_steps = optional(int, 100)
  # Save the train input position with each checkpoint, so a resumed run
  # neither repeats nor skips examples of the current epoch.
  config.train.checkpoint_input_state = True
  # On a NaN/Inf loss or gradient: 'stop' (error naming the steps) or
  # 'rollback' (restore the last good checkpoint and continue on new data).
  config.train.nan_policy = "stop"
  # Rollbacks allowed in one run before stopping anyway.
  config.train.nan_max_rollbacks = 3
  # Checkpoint file or model_dir to initialise from when model_dir has no
  # checkpoint yet; '' disables warm start.
  config.train.warm_start_check_point = ""
  # Regex over trainable variable names to warm-start (Estimator's default).
  config.train.warm_start_variables_regex = ".*"
  # {name in this model: name in the warm-start checkpoint} for renamed variables.
  config.train.warm_start_var_name_map = ml_collections.ConfigDict()
  # Eval metric that stops training when it stops improving; '' disables.
  config.train.early_stopping_metric = ""
  # Stop once an evaluation is this many steps after the best one.
  config.train.early_stopping_steps_without_decrease = optional(int)
  # Evaluations before this step are ignored by early stopping.
  config.train.early_stopping_min_steps = 1
  # Check for early stopping on crossing this step count; None: once per epoch.
  config.train.early_stopping_hook_run_every_steps = optional(int)
  # True for metrics that improve upwards (accuracy); False for loss.
  config.train.early_stopping_higher_is_better = False
  # SavedModel / checkpoint exporters, each disabled by an empty name (engine/exporters.py).
  config.train.exporters = exporters_config()
  # Feeder of --mode=predict; empty file_patterns predicts over eval_feeder.
  config.train.predict_feeder = feeder_config()
  config.train.train_feeder = feeder_config()
  config.train.eval_feeder = feeder_config()

  config.runtime = ml_collections.ConfigDict()
  # Compile the per-batch train step with XLA on GPUs and TPUs.
  config.runtime.xla = True
  # Also use XLA on a machine with only CPUs. Off: TensorFlow's own CPU
  # kernels measured faster there (benchmarks/README.md).
  config.runtime.xla_on_cpu = False
  # Let AutoGraph rewrite Python `if`/`for` on tensors in the model's code for
  # the train step. Off: Estimator model_fns and Keras 3 layers never relied
  # on it, and converting took half the time to the first toy step
  # (benchmarks/README.md); turn on for models that branch on tensor values.
  config.runtime.autograph = False
  # Seed for weight initialisation and shuffling.
  config.runtime.seed = 42
  # Most memory the record index of a `shuffle: 'global'` feeder (or of
  # record-exact sharding across workers) may take: 16 bytes per record, so
  # the 4 GiB default fits 268M records. A larger dataset stops with an error
  # suggesting shuffle: True.
  config.runtime.max_index_bytes = 4 << 30
  # tf.distribute strategy: 'auto' (multi_worker_mirrored when TF_CONFIG names
  # several workers, mirrored when runtime.gpus selects several GPUs, else
  # one_device), 'one_device', 'mirrored' (on the CPU: every logical CPU
  # device) or 'multi_worker_mirrored'.
  config.runtime.strategy = "auto"
  # GPUs to train on: '' for the CPU, 'all', or indices such as '0,1'.
  config.runtime.gpus = ""
  # tf.data service dispatcher ('grpc://host:port') that runs the train input
  # pipeline; '' reads it in this process.
  config.runtime.data_service = ""
  # 'float32', 'mixed_float16' (with dynamic loss scaling) or 'mixed_bfloat16';
  # variables and checkpoints stay float32 under every policy.
  config.runtime.mixed_precision = "float32"
  return config
