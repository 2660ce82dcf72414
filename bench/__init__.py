"""Benchmarks and the kill -9 campaign; run from the checkout root as ``python -m bench.<name>``."""
