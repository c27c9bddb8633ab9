"""Models shipped with deephub; `model.type: 'file:Class'` looks here."""
