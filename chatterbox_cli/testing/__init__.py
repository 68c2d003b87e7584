"""Test-only code (random-weight checkpoints, the load generator); the runtime never imports it."""
