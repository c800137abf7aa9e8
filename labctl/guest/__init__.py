"""Guest steps (PowerShell run over PowerShell Direct) and the readiness stages."""
