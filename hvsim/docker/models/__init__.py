"""Docker state and rules: the engine, container processes, the registry (no PowerShell objects)."""
