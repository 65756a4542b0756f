"""Benchmarks: learning studies and cost measurements (run as modules)."""
