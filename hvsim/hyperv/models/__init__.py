"""Hyper-V state and rules: VMs, checkpoints, adapters, the host's configuration (no PowerShell objects)."""
