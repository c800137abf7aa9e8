"""The guest OS: setup (unattend, boot), Windows features, PowerShell Direct, code pages, localized names."""
