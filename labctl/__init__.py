"""labctl: build Hyper-V labs of Windows container hosts over PowerShell Remoting."""

__version__ = "0.1.0"
