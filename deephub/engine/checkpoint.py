"""Name-based checkpoints in the Estimator layout.

An Estimator restores by variable *name*, so deephub writes tensor bundles
whose keys are TF1 names (`toy/w1`, `global_step`, `toy/w1/Adam`,
`beta1_power`) rather than `tf.train.Checkpoint` object paths, plus the text
`checkpoint` state file that `tf.train.latest_checkpoint` reads.

Writes are crash-safe from a reader's point of view: the bundle is written
under a temporary prefix (unique per process and save) and merged into place,
and only then does the state file, replaced atomically, point at it.

Reads trust nothing: `restore_newest` resumes from the newest checkpoint that
reads (checkpoint_files.py), and a save never deletes or overwrites a
checkpoint newer than itself or one it passed over as damaged: those are
moved to `model_dir/damaged_checkpoints/` when a save needs their name.
"""

import dataclasses
import math
import os
import time
import uuid
from collections.abc import Callable, Mapping

import keras
import tensorflow as tf
from absl import logging

from deephub.engine import checkpoint_files
from deephub.errors import UserError

_PREFIX = checkpoint_files.PREFIX
# Where a save moves the files of a damaged checkpoint whose name it needs.
DAMAGED_DIR = "damaged_checkpoints"


class NonFiniteValuesError(RuntimeError):
  """A checkpoint was refused because a value is NaN or Inf; the last good checkpoint stays."""


@dataclasses.dataclass(frozen=True)
class Entry:
  """One checkpoint key: how to read its value and how to restore it."""

  read: Callable[[], tf.Tensor]
  assign: Callable[[tf.Tensor], None]
  dtype: tf.DType
  # Restored when present, skipped when an older or Estimator checkpoint lacks it.
  optional: bool = False
  # Suffix of the bundle holding the entry: '' is `model.ckpt-N` itself. Values
  # Estimator-era readers cannot load (variant tensors) go to a side bundle.
  bundle: str = ""


def variable_entry(variable) -> Entry:
  """An entry that saves and restores `variable` as is."""
  return Entry(
    read=lambda: tf.convert_to_tensor(variable), assign=variable.assign, dtype=tf.as_dtype(variable.dtype)
  )


# Keras 3 names optimizer slots `<optimizer>/<var path with _>_<slot>`; TF1
# names them `<var>/<Optimizer>[_N]`. Only optimizers listed here can write
# Estimator-readable checkpoints.
_TF1_SLOT_NAMES = {
  "adam": {"momentum": "Adam", "velocity": "Adam_1"},
  "sgd": {"momentum": "Momentum"},
}


def optimizer_entries(
  optimizer: keras.optimizers.Optimizer, variables: Mapping[str, tf.Variable]
) -> dict[str, Entry]:
  """Maps a built Keras optimizer's state onto TF1 checkpoint keys.

  For Adam the TF1 scalars `beta1_power` / `beta2_power` are derived from the
  Keras step counter: after t updates TF1 holds beta^(t+1). Restoring inverts
  that (from beta2_power, which stays representable in float32 far longer).

  Args:
    optimizer: the optimizer, already built on the model variables.
    variables: model variables by checkpoint name.

  Raises:
    UserError: an optimizer whose slots have no TF1 naming here.
  """
  kind = type(optimizer).__name__.lower()
  if kind not in _TF1_SLOT_NAMES:
    raise UserError(
      f"optimizer {type(optimizer).__name__} has no Estimator checkpoint naming; "
      f"use one of {', '.join(_TF1_SLOT_NAMES)}"
    )
  by_path = {v.path: v for v in optimizer.variables}
  entries = {}
  for name, variable in variables.items():
    if not variable.trainable:
      continue
    for keras_slot, tf1_slot in _TF1_SLOT_NAMES[kind].items():
      slot = by_path.get(f"{optimizer.name}/{variable.path.replace('/', '_')}_{keras_slot}")
      if slot is not None:
        entries[f"{name}/{tf1_slot}"] = variable_entry(slot)
  if kind == "adam":
    iterations = optimizer.iterations
    for key, beta in (("beta1_power", optimizer.beta_1), ("beta2_power", optimizer.beta_2)):
      entries[key] = Entry(
        read=lambda beta=beta: tf.pow(tf.constant(beta, tf.float32), tf.cast(iterations + 1, tf.float32)),
        assign=lambda value, beta=beta: _restore_iterations(iterations, value, beta),
        dtype=tf.float32,
      )
  return entries


def _restore_iterations(iterations, beta_power: tf.Tensor, beta: float) -> None:
  """Sets the Keras step count t from beta^(t+1), when the value still tells."""
  value = float(beta_power)
  if 0.0 < value < 1.0 and math.isfinite(value):
    iterations.assign(max(0, round(math.log(value) / math.log(beta)) - 1))


class CheckpointSaver:
  """Saves and restores named entries as `model_dir/model.ckpt-<step>`."""

  def __init__(self, model_dir: str, entries: Mapping[str, Entry], *, keep_checkpoint_max: int | None = 5):
    """Args:
    model_dir: folder of the checkpoints and the `checkpoint` state file.
    entries: checkpoint key -> Entry; must include `global_step`.
    keep_checkpoint_max: newest checkpoints kept; older ones are deleted.
      0 or None keeps every checkpoint (Estimator's RunConfig meaning).
    """
    self.model_dir = model_dir
    self.entries = dict(entries)
    self.keep_checkpoint_max = keep_checkpoint_max
    # The checkpoint this saver restored or wrote last: what a rollback returns to.
    self._current: str | None = None
    # Damaged checkpoints restore_newest passed over: newer than _current, never trusted.
    self._passed_over: set[str] = set()

  def latest(self) -> str | None:
    """The checkpoint this saver restored or wrote last; before either, the newest with an index."""
    if self._current is not None:
      return self._current
    names = checkpoint_files.complete(self.model_dir)
    return os.path.join(self.model_dir, names[-1]) if names else None

  def save(self, step: int) -> str:
    """Writes checkpoint `step` and points the state file at it; returns its prefix.

    Raises:
      NonFiniteValuesError: a float value is NaN or Inf (nothing is written).
    """
    tf.io.gfile.makedirs(self.model_dir)
    name = f"{_PREFIX}-{step}"
    prefix = os.path.join(self.model_dir, name)
    values = {key: entry.read() for key, entry in self.entries.items()}
    for key, value in values.items():
      if value.dtype.is_floating and not bool(tf.reduce_all(tf.math.is_finite(value))):
        raise NonFiniteValuesError(f"refusing to write checkpoint {step}: {key} holds NaN or Inf")
    self._set_aside_damaged(name)
    for bundle, keys in self._bundles(self.entries).items():
      # Unique per process and save: no other writer's merge can take or delete it.
      temp_prefix = os.path.join(self.model_dir, f".{name}{bundle}_{_unique()}_temp", "part")
      tf.raw_ops.SaveV2(
        prefix=temp_prefix,
        tensor_names=keys,
        shape_and_slices=[""] * len(keys),
        tensors=[values[k] for k in keys],
      )
      # Merge moves the data file into place and writes the index last.
      tf.raw_ops.MergeV2Checkpoints(
        checkpoint_prefixes=[temp_prefix], destination_prefix=prefix + bundle, delete_old_dirs=True
      )
    # Only older checkpoints: a newer one (damaged, or another writer's) is never pruned.
    listed = [p for p in self._listed() if checkpoint_files.rank(p) < step]
    keep = self.keep_checkpoint_max
    kept = list(listed) if not keep else listed[-(keep - 1) :] if keep > 1 else []
    kept.append(name)
    # The state file is replaced atomically, and only after every bundle is complete.
    self._check_state_not_newer(step)
    write_state_file(self.model_dir, name, kept)
    for old in set(listed) - set(kept):  # Only checkpoints the state file tracked.
      for path in tf.io.gfile.glob(os.path.join(self.model_dir, f"{old}.*")):
        tf.io.gfile.remove(path)
    logging.info("Saved checkpoint %s", prefix)
    self._current = prefix
    return prefix

  def restore(self, prefix: str, *, keys: list[str] | None = None) -> None:
    """Assigns every entry (or only `keys`) from the checkpoint at `prefix`.

    Every value is read before any is assigned, so a checkpoint that fails
    to read leaves the variables as they were.

    Raises:
      UserError: a key is missing from the checkpoint or has another shape.
      tf.errors.OpError: the checkpoint's files are damaged.
    """
    for key, value in self._read(prefix, keys).items():
      self.entries[key].assign(value)
    self._current = prefix

  def restore_newest(self, *, what: str = "resume") -> str | None:
    """Restores the newest checkpoint of model_dir that reads, passing over damaged ones.

    Returns:
      Its prefix, or None when model_dir holds no checkpoint file and no state file.

    Raises:
      UserError: checkpoint files exist but none reads (the message names each
        and why), or the checkpoints belong to another model.
    """
    found = checkpoint_files.restore_newest(
      self.model_dir,
      self._read,
      what=what,
      fix="restore them from a backup, or move them and the checkpoint state file away to start over",
    )
    if found is None:
      return None
    for key, value in found.value.items():
      self.entries[key].assign(value)
    self._current = found.prefix
    self._passed_over = {os.path.basename(p) for p in found.passed_over}
    return found.prefix

  def _read(self, prefix: str, keys: list[str] | None = None) -> dict[str, tf.Tensor]:
    """Reads the values of every entry (or only `keys`) from the checkpoint at `prefix`.

    A side bundle that holds only optional entries (the input position) is
    skipped with a warning when damaged: the weights still resume, and the
    input starts its epoch over.

    Raises:
      UserError: a key is missing from the checkpoint or has another shape.
      tf.errors.OpError: the main bundle is damaged (unreadable index, a
        missing or truncated data file).
    """
    wanted = {k: self.entries[k] for k in (keys if keys is not None else self.entries)}
    values = {}
    for bundle, bundle_keys in self._bundles(wanted).items():
      path = prefix + bundle
      side = bundle != "" and all(self.entries[k].optional for k in bundle_keys)
      if side and not _exists(path):  # An Estimator's checkpoint, or a save killed between bundles.
        logging.info("%s has no %s bundle: the train input starts its epoch over", prefix, bundle)
      try:
        values.update(self._read_bundle(prefix, path, bundle_keys))
      except tf.errors.OpError as error:
        if not side:
          raise
        logging.warning(
          "%s is damaged (%s): resuming the weights of %s, the train input starts its epoch over",
          os.path.basename(path),
          checkpoint_files.first_line(error.message),
          os.path.basename(prefix),
        )
    return values

  def _read_bundle(self, prefix: str, path: str, bundle_keys: list[str]) -> dict[str, tf.Tensor]:
    """Reads `bundle_keys` from the bundle at `path`, checking names and shapes."""
    shapes = tf.train.load_checkpoint(path).get_variable_to_shape_map() if _exists(path) else {}
    bundle_keys = [k for k in bundle_keys if k in shapes or not self.entries[k].optional]
    missing = [k for k in bundle_keys if k not in shapes]
    if missing:
      raise UserError(
        f"checkpoint {prefix} lacks {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}; "
        "it was written by another model or optimizer: use a fresh model_dir"
      )
    if not bundle_keys:
      return {}
    for key in bundle_keys:
      if self.entries[key].dtype != tf.variant:  # Serialized state has no fixed shape.
        expected = self.entries[key].read().shape
        if list(expected) != list(shapes[key]):
          raise UserError(
            f"checkpoint {prefix}: {key} has shape {list(shapes[key])}, the model "
            f"{list(expected)}; use a fresh model_dir or the matching config"
          )
    values = tf.raw_ops.RestoreV2(
      prefix=path,
      tensor_names=bundle_keys,
      shape_and_slices=[""] * len(bundle_keys),
      dtypes=[self.entries[k].dtype for k in bundle_keys],
    )
    return dict(zip(bundle_keys, values, strict=True))

  @staticmethod
  def _bundles(entries: Mapping[str, Entry]) -> dict[str, list[str]]:
    """Sorted keys per bundle suffix ('' is the Estimator-readable main bundle)."""
    bundles: dict[str, list[str]] = {}
    for key in sorted(entries):
      bundles.setdefault(entries[key].bundle, []).append(key)
    return bundles

  def remove_partial_saves(self) -> None:
    """Deletes what a save killed midway left behind (never a listed checkpoint).

    Only a process holding the model_dir lock may call it: the temp names of
    a live writer match too.
    """
    for path in tf.io.gfile.glob(os.path.join(self.model_dir, f".{_PREFIX}-*_temp")):
      tf.io.gfile.rmtree(path)
    for path in tf.io.gfile.glob(os.path.join(self.model_dir, "checkpoint*.tmp")):
      tf.io.gfile.remove(path)

  def _listed(self) -> list[str]:
    """Checkpoint names the state file tracks, and the one restored, oldest first.

    When the state file is unreadable, the complete checkpoints on disk.
    """
    state = checkpoint_files.read_state(self.model_dir)
    if state.problem:
      return checkpoint_files.complete(self.model_dir)
    names = {os.path.basename(p) for p in state.listed}
    if self._current is not None and os.path.dirname(self._current) == self.model_dir:
      names.add(os.path.basename(self._current))  # Restored from disk though the state file missed it.
    return sorted(names, key=checkpoint_files.rank)

  def _set_aside_damaged(self, name: str) -> None:
    """Moves files of an earlier checkpoint `name` out of the way of a new save of it.

    They can only be a damaged checkpoint (restore_newest took the newest
    readable one) or an interrupted save; either way they are kept, in
    `model_dir/damaged_checkpoints/`, never overwritten.
    """
    files = checkpoint_files.on_disk(self.model_dir).get(name, [])
    if not files or (self._current is not None and os.path.basename(self._current) == name):
      return
    folder = os.path.join(self.model_dir, DAMAGED_DIR)
    tf.io.gfile.makedirs(folder)
    for base in files:
      target = os.path.join(folder, base)
      if tf.io.gfile.exists(target):
        target = f"{target}.{int(time.time())}"
      tf.io.gfile.rename(os.path.join(self.model_dir, base), target, overwrite=True)
    logging.warning(
      "Moved the files of damaged checkpoint %s (%s) to %s before saving step %s again",
      name,
      ", ".join(sorted(files)),
      folder,
      checkpoint_files.step_of(name),
    )

  def _check_state_not_newer(self, step: int) -> None:
    """Refuses to move the state file back to an older step (another writer in model_dir).

    Raises:
      UserError: the state file names a newer checkpoint this saver did not
        pass over as damaged.
    """
    state = checkpoint_files.read_state(self.model_dir)
    if state.latest is None:
      return
    name = os.path.basename(state.latest)
    newer = checkpoint_files.step_of(name)
    if newer is not None and newer > step and name not in self._passed_over:
      raise UserError(
        f"model_dir {self.model_dir}: the checkpoint state file names {name}, newer than this run's "
        f"step {step}: another trainer is writing into this model_dir; stop one of them"
      )


def _exists(prefix: str) -> bool:
  return tf.io.gfile.exists(prefix + ".index")


def write_state_file(model_dir: str, latest: str, kept: list[str]) -> None:
  """Atomically replaces the text-format `CheckpointState` file (relative paths)."""
  lines = [f'model_checkpoint_path: "{latest}"']
  lines += [f'all_model_checkpoint_paths: "{name}"' for name in kept]
  path = os.path.join(model_dir, "checkpoint")
  temp = f"{path}.{_unique()}.tmp"  # Unique: two writers never rename each other's file.
  with tf.io.gfile.GFile(temp, "w") as f:
    f.write("\n".join(lines) + "\n")
  tf.io.gfile.rename(temp, path, overwrite=True)


def _unique() -> str:
  """A name part no other process or save uses: the pid, plus randomness for hosts and threads."""
  return f"{os.getpid()}_{uuid.uuid4().hex[:8]}"
