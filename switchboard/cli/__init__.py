"""The operator CLI, ``switchboard``: one module per group of commands."""
