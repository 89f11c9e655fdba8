"""Settings: one TOML file plus the environment, validated once with clear messages."""
