"""apflow benchmarks: one module per section, run by bench/run.py (see bench/README.md)."""
