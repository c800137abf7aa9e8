"""Integration tests: the labctl CLI against the simulator, end to end over WinRM."""

from labharness import quickstart, served  # noqa: F401  (fixtures)
