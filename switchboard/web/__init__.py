"""`switchboard web`: a small read-only console over the call records and recordings."""
