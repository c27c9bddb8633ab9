"""Hyperparameter search (`deep hpt`): Optuna studies whose trials are deephub trainings.

`spec` reads the tune file, `study` opens the Optuna study and runs workers,
`trial` trains one trial into `<study-dir>/trial-<number>`, `hparams` writes
what TensorBoard's HParams tab reads, and `status` prints the trial table.
Optuna is the `hpt` extra: `require_optuna` turns its absence into one line.
"""

from deephub.errors import UserError

INSTALL_HINT = "pip install 'deephub[hpt]' (Optuna and the PostgreSQL driver psycopg)"


def require_optuna():
  """Returns the optuna module, or raises a UserError saying how to install it."""
  try:
    import optuna
  except ModuleNotFoundError:
    raise UserError(f"deep hpt needs Optuna, which is not installed; {INSTALL_HINT}") from None
  return optuna
