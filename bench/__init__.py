"""Benchmarks (not tests): `interview-bot bench [--quick]` runs them and prints figures and JSON lines."""
