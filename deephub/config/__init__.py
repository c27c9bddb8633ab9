"""Configs: the spec and how a run's config is built from a variant and overrides.

- `defaults`: every key the engine reads, with a comment on each.
- `variants`: finding and loading a variant (`NAME.py`, else `NAME.yaml`).
- `yaml_variants` with `yaml_files` and `yaml_templates`: legacy metayaml variants, read safely.
- `overrides`: the one parser of `-p KEY VALUE` and `--config.KEY=VALUE`.
- `literals`: arithmetic over literals in override values (`100/5`, `2**10`), without eval.
"""
