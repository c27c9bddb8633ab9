"""Raw files to TFRecords the feeders read: `deep preprocessor image|text` (see README)."""
