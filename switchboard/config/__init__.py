"""Configuration read once at start: the environment, routes.toml, policy.toml, the prompts."""
