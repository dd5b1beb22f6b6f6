"""Helpers for tfstyle's tests and benchmarks."""
