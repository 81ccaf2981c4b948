"""Benchmarks for runlog; run them as modules, e.g. ``python -m bench.bench_store``."""
