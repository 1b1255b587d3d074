"""Eterna Home reference application (deployment test bed for the infrastructure collection)."""

__version__ = "1.0.0"
