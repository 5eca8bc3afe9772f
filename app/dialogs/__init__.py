"""Dialogs that start or transform labels (gray-level and intensity bins)."""
