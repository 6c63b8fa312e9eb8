"""apflow."""
