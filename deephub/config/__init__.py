"""Configs: the spec and how a run's config is built from a variant and overrides.

- `defaults`: every key the engine reads, with a comment on each.
- `variants`: finding and loading a variant (`NAME.py`, else `NAME.yaml`).
- `yaml_variants` with `yaml_files` and `yaml_templates`: legacy metayaml variants, read safely.
- `overrides`: the one parser of `-p KEY VALUE` and `--config.KEY=VALUE`.
- `variant_flag`: the ml_collections `--config` hook of `python -m deephub.train`.
"""
