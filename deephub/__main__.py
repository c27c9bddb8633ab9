"""`python -m deephub ...` runs `deep ...` (as the old framework's package did)."""

from deephub.cli.main import run

if __name__ == "__main__":
  run()
