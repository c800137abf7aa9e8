"""PowerShell Direct into the guest: remoting cmdlets, the guest command line, the guest steps."""
