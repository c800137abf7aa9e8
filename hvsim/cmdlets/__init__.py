"""Cmdlet handlers: bound parameters in, model calls, PowerShell-shaped objects out.

Importing this package registers every handler module with the registry in base.py.
"""

from hvsim.cmdlets import files, host, hyperv, network, remoting, utility, vhd  # noqa: F401  (registration)
