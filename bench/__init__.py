"""Benchmarks: each compares the service with a baseline measured in the same run, prints a
table and writes JSON to bench/results.
"""
