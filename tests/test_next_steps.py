"""The lines printed after a finished run: model_dir, the TensorBoard command, the newest export."""

from deephub import next_steps


def test_lines_without_export(tmp_path):
  model_dir = str(tmp_path / "runs" / "my toy")
  assert next_steps.lines(model_dir) == [
    f"deephub: model_dir {model_dir}",
    f"deephub: see the curves with: tensorboard --logdir '{model_dir}'",  # Quoted: it has a space.
  ]


def test_newest_complete_export(tmp_path):
  for folder in ("export/best/1700000100", "export/final/1700000200", "export/final/temp-1700000300"):
    (tmp_path / folder).mkdir(parents=True)
    (tmp_path / folder / "saved_model.pb").write_bytes(b"")
  (tmp_path / "export/final/1700000400").mkdir()  # Not a SavedModel (no saved_model.pb).
  newest = str(tmp_path / "export/final/1700000200")
  assert next_steps.newest_export(str(tmp_path)) == newest
  assert next_steps.lines(str(tmp_path))[-1] == f"deephub: newest export (SavedModel): {newest}"
