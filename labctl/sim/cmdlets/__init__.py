"""Cmdlet handlers: bound parameters in, model calls, PowerShell-shaped objects out."""
