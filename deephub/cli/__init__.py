"""The `deep` command line of the Estimator-era Deephub (see `deephub.cli.main`)."""
