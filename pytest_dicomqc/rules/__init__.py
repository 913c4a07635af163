"""The rules language: load (safe YAML + schema) and evaluate (pure functions)."""
