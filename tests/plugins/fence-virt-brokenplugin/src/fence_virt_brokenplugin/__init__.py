"""Entry points that fail on purpose, so tests prove a broken plugin stops the daemon loudly."""
