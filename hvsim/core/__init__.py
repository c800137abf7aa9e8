"""Shared machinery of the simulated host: the clock and its durations, counters, fault plans, paths, HTTP."""
