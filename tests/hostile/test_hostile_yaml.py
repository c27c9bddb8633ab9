"""Hostile YAML and Python variants through the real CLI: no code runs, one line, prompt exit.

Issue 13 part 1. Each case writes a variant (and the files it extends) into a
temp dir and runs `python -m deephub.train` (and `deep trainer train`) on it.
The runs end with a user error on purpose: an extra positional argument
(`unexpected`) makes `deephub.train` stop right after its flags, including
the --config flag, were parsed, so the variant is loaded completely on the
way (where metayaml ran the payloads) but TensorFlow is never started.
"""

import os
import textwrap

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deephub.config import variants, yaml_files, yaml_variants
from deephub.errors import UserError
from tests.cli_run import run_deep
from tests.conftest import REPO, run_cli

TIMEOUT = 60  # Seconds: a hang (a FIFO, an alias bomb) fails the test instead of blocking it.
VARIANT = "model: {type: 'toy:DebugToyModel'}\n"


def write(path, text):
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(textwrap.dedent(text))
  return path


def run_train(variants_dir, variant="v"):
  return run_cli(f"--variant={variant}", f"--variants_dir={variants_dir}", "unexpected", timeout=TIMEOUT)


def one_line_error(result, prefix="deephub: error: "):
  """Asserts exit 2 with exactly one stderr line and no traceback; returns the line."""
  assert result.returncode == 2, result.stderr
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith(prefix), result.stderr
  assert "Traceback" not in result.stderr
  return lines[0]


def touch(canary):
  return f"cp.__globals__.os.system('touch {canary}')"


# A template whose *result* is metayaml's `$(...)`: no single piece looks like code.
def composed_in_one(canary):
  return {"note": "${ '$' ~ '(' ~ \"" + touch(canary) + "\" ~ ')' }"}


def composed_across_keys(canary):
  return {"a": "$", "b": f"({touch(canary)})", "note": "${model.a ~ model.b}"}


@pytest.mark.parametrize("form", [composed_in_one, composed_across_keys])
@pytest.mark.parametrize("where", ["variant", "extended feeder"])
def test_composed_templates_are_data(tmp_path, form, where):
  canary = tmp_path / "canary"
  model = form(canary)
  feeder = {"train": {"epochs": 2}}
  variant = {"model": {"type": "toy:DebugToyModel"}, "extend": ["../feeders/f.yaml"]}
  (feeder if where == "extended feeder" else variant).setdefault("model", {}).update(model)
  write(tmp_path / "feeders" / "f.yaml", yaml.safe_dump(feeder))
  write(tmp_path / "variants" / "v.yaml", yaml.safe_dump(variant))

  line = one_line_error(run_train(tmp_path / "variants"))
  assert "unexpected arguments" in line  # The whole variant loaded, then the run stopped.
  line = one_line_error(
    run_deep(
      "trainer", "train", "v", "-d", str(tmp_path / "variants"), "-p", "train.no_such_key", "1",
      timeout=TIMEOUT,
    ),
    prefix="deephub: error: ",
  )  # fmt: skip
  assert "no_such_key" in line
  # In-process too: the composed text is the value, kept as text, never evaluated.
  config = variants.load_variant("v", str(tmp_path / "variants"))
  assert config.model.note == f"$({touch(canary)})"
  assert not canary.exists()


def test_python_tag_is_refused(tmp_path):
  canary = tmp_path / "canary"
  payload = f"!!python/object/apply:os.system ['touch {canary}']"
  write(tmp_path / "feeders" / "f.yaml", f"train:\n  epochs: {payload}\n")
  write(tmp_path / "variants" / "v.yaml", VARIANT + "extend: [../feeders/f.yaml]\n")
  line = one_line_error(run_train(tmp_path / "variants"))
  assert "f.yaml is refused (line 2)" in line and "constructor for the tag" in line
  assert not canary.exists()


def test_fifo_in_extend_is_refused_without_hanging(tmp_path):
  (tmp_path / "feeders").mkdir()
  os.mkfifo(tmp_path / "feeders" / "f.yaml")
  write(tmp_path / "variants" / "v.yaml", VARIANT + "extend: [../feeders/f.yaml]\n")
  line = one_line_error(run_train(tmp_path / "variants"))
  assert "f.yaml is not a regular file" in line


def test_fifo_swapped_in_after_the_stat_is_refused_on_the_open_descriptor(tmp_path, monkeypatch):
  fifo = tmp_path / "f.yaml"
  os.mkfifo(fifo)
  real_stat = os.stat
  # The path was a regular file when stat'ed; the fstat of what was opened decides.
  monkeypatch.setattr(os, "stat", lambda path, *a, **k: real_stat(__file__))
  with pytest.raises(UserError, match=r"f.yaml is not a regular file"):
    yaml_files.read_bytes(str(fifo))


def test_alias_bomb_is_refused(tmp_path):
  lines = ["model:", "  type: 'toy:DebugToyModel'", "  l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
  for level in range(1, 9):
    lines.append(f"  l{level}: &l{level} [{', '.join([f'*l{level - 1}'] * 9)}]")
  write(tmp_path / "v.yaml", "\n".join(lines) + "\n")
  line = one_line_error(run_train(tmp_path))
  assert "v.yaml is refused (line 3): YAML anchors (&name) are not supported" in line


def test_a_file_over_10_mb_is_refused(tmp_path):
  write(tmp_path / "v.yaml", VARIANT + "# " + "x" * yaml_files.MAX_FILE_BYTES + "\n")
  line = one_line_error(run_train(tmp_path))
  assert "v.yaml is over 10 MB" in line


@pytest.mark.parametrize(
  "depth, problem",
  [(40, "nested deeper than 32 levels"), (50_000, "exceeded maximum nesting depth")],  # libyaml's own cap.
)
def test_deep_nesting_is_refused(tmp_path, depth, problem):
  write(tmp_path / "v.yaml", VARIANT + "train: {x: " + "[" * depth + "]" * depth + "}\n")
  line = one_line_error(run_train(tmp_path))
  assert f"v.yaml is refused (line 2): {problem}" in line


def test_extend_cycle_is_refused(tmp_path):
  write(tmp_path / "v.yaml", VARIANT + "extend: [other.yaml]\n")
  write(tmp_path / "other.yaml", "extend: [v.yaml]\n")
  line = one_line_error(run_train(tmp_path))
  assert "extend cycle (v.yaml -> other.yaml -> v.yaml)" in line


def test_a_chain_of_65_files_is_refused(tmp_path):
  write(tmp_path / "v.yaml", VARIANT + "extend: [f1.yaml]\n")
  for i in range(1, 64):
    write(tmp_path / f"f{i}.yaml", f"extend: [f{i + 1}.yaml]\n" if i < 63 else "train: {epochs: 1}\n")
  assert len(yaml_variants.check_safe(str(tmp_path / "v.yaml"))) == 64  # 64 files are fine.
  write(tmp_path / "f63.yaml", "extend: [f64.yaml]\n")
  write(tmp_path / "f64.yaml", "train: {epochs: 1}\n")
  line = one_line_error(run_train(tmp_path))
  assert "f64.yaml: the extend chain holds more than 64 files" in line


# A shadow-format file: it must not be echoed, not even its first line.
SHADOW = "root:$6$saltsalt$SECRETHASH0123:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n"


@pytest.mark.parametrize("how", ["variant", "extended"])
def test_a_symlinked_secret_file_is_not_echoed(tmp_path, how):
  write(tmp_path / "secret", SHADOW)
  os.symlink(tmp_path / "secret", tmp_path / "shadow.yaml")
  if how == "extended":
    write(tmp_path / "v.yaml", VARIANT + "extend: [shadow.yaml]\n")
  result = run_train(tmp_path, "shadow" if how == "variant" else "v")
  line = one_line_error(result)
  assert "unknown key <a key of 49 characters>" in line
  for secret in ("root:", "saltsalt", "SECRETHASH", "19000", "99999", "daemon"):
    assert secret not in result.stderr + result.stdout


def test_a_python_variant_runs_once(tmp_path):
  counter = tmp_path / "runs.txt"
  write(
    tmp_path / "counted.py",
    f"""
    with open({str(counter)!r}, "a") as f:
      f.write("ran\\n")
    from deephub.config import defaults
    def get_config():
      return defaults.base_config()
    """,
  )
  # By path, as the issue's `--variant=/abs/x.py`; the run stops after every flag parsed.
  one_line_error(run_cli(f"--variant={tmp_path / 'counted.py'}", "unexpected", timeout=TIMEOUT))
  assert counter.read_text() == "ran\n"
  deep = run_deep(
    "trainer", "train", "counted.py", "-d", str(tmp_path), "-p", "no.such", "1", timeout=TIMEOUT
  )
  one_line_error(deep, prefix="deephub: error: ")
  assert counter.read_text() == "ran\n" * 2


# Property test: random template fragments spread over keys and an extended file.
CANARY = "/tmp/deephub_yaml_canary"
ATTACK = f"$(cp.__globals__.os.system('touch {CANARY}'))"  # What metayaml ran once composed.
FRAGMENTS = [
  "$", "(", ")", "{", "}", "${", "$(", "~", "'", '"', "__globals__", "cp", ".", "model.a", "model.b", "model",
  "train.epochs", "deephub_data_dir", "+", "*", "1", "0", "[", "]", " ", "|attr", "__class__", "__import__",
  f"cp.__globals__.os.system('touch {CANARY}')", f"open('{CANARY}', 'w')", "${model.a ~ model.b}",
  "${__del__}", "\\",
]  # fmt: skip
# Raw text, or a template joining quoted fragments with `~`.
VALUE = st.one_of(
  st.lists(st.sampled_from(FRAGMENTS), max_size=8).map("".join),
  st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=5).map(
    lambda parts: "${ " + " ~ ".join(repr(p) for p in parts) + " }"
  ),
)
KEYS = st.sampled_from(["a", "b", "c", "note"])


@st.composite
def split_attack(draw):
  """ATTACK cut into pieces, each a quoted literal or another key's value (in either file), joined by `~`."""
  # Always split "$" from "(": no piece then looks like a template on its own.
  cuts = sorted({1, *draw(st.lists(st.integers(2, len(ATTACK)), max_size=3))})
  chunks = [ATTACK[i:j] for i, j in zip([0, *cuts], [*cuts, len(ATTACK)], strict=True)]
  placed = {"base": {}, "top": {}}
  parts = []
  for i, chunk in enumerate(chunks):
    home = draw(st.sampled_from(["literal", "base", "top"]))
    if home == "literal":
      parts.append(repr(chunk))
    else:
      placed[home][f"p{i}"] = chunk
      parts.append(f"model.p{i}")
  placed[draw(st.sampled_from(["base", "top"]))]["joined"] = "${ " + " ~ ".join(parts) + " }"
  return placed


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
  base=st.dictionaries(KEYS, VALUE, max_size=3),
  top=st.dictionaries(KEYS, VALUE, max_size=3),
  epochs=st.one_of(st.none(), VALUE),
  attack=split_attack(),
)
def test_random_template_fragments_give_a_config_or_a_one_line_error(tmp_path, base, top, epochs, attack):
  if os.path.exists(CANARY):
    os.remove(CANARY)
  train = {} if epochs is None else {"train": {"epochs": epochs}}
  write(tmp_path / "base.yaml", yaml.safe_dump({"model": {**base, **attack["base"]}, **train}))
  top = {"type": "toy:X", **top, **attack["top"]}
  write(tmp_path / "v.yaml", yaml.safe_dump({"extend": "base.yaml", "model": top}))
  try:
    config = yaml_variants.load_yaml_variant(str(tmp_path / "v.yaml"))
  except UserError as error:
    assert "\n" not in str(error) and str(error).startswith(str(tmp_path)), str(error)
  else:
    assert config.is_locked
    assert config.model.joined == ATTACK  # The composed text stays text.
  assert not os.path.exists(CANARY)


@pytest.mark.parametrize("section", ["feeder", "exporter"])
def test_a_class_spelled_variant_cannot_call_an_arbitrary_class(tmp_path, section):
  # The later spelling names classes to import; one without the feeder / exporter hooks is never called.
  flag = tmp_path / "pwned"
  popen = f"{{module_path: subprocess, class_type: Popen, init_args: {{args: [touch, '{flag}']}}}}"
  body = (
    f"train:\n  train_feeder: {{'${{__del_all__}}': 1, {popen[1:]}\n"  # Only Popen's own arguments.
    if section == "feeder"
    else f"train:\n  exporters:\n    mine: {popen}\n"
  )
  write(tmp_path / "v" / "v.yaml", f"extend: {os.path.join(REPO, 'configs', 'variants', 'toy.yaml')}\n{body}")
  result = run_deep(
    "trainer", "train", "v", "-d", str(tmp_path / "v"), "-p", "model.model_dir", str(tmp_path / "m"),
    timeout=TIMEOUT,
  )  # fmt: skip
  assert result.returncode == 2, result.stderr[-2000:]
  line = result.stderr.strip().splitlines()[-1]
  key = "train.train_feeder" if section == "feeder" else "train.exporters.custom.mine"
  assert line.startswith(f"deephub: error: {key}.type 'subprocess:Popen' "), line
  assert not flag.exists()
