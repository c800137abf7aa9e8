"""The PowerShell engine: parameter binding, the pipeline runtime, .NET values, errors, the cmdlet catalog."""
