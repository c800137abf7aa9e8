"""The Hyper-V cmdlets: the only place Hyper-V state becomes PowerShell objects."""
