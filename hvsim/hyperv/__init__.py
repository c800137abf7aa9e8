"""Hyper-V: virtual machines and the host (models), the Hyper-V cmdlets and their objects (handlers)."""
