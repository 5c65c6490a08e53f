"""What outlives a call: the database, the caller directory, call records, dial history."""
