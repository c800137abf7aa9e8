"""Hyper-V host facts and host operations, as typed cmdlet invocations and pure parsers."""
