"""The caller directory: entries, CSV import, lookup within a budget."""
