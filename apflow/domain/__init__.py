"""Domain model: frozen dataclasses, enums and the error root."""
