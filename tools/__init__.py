"""Function tools the agent can call, one module per tool."""
