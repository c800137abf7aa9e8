"""WS-Management over HTTP(S): SOAP, authentication, message encryption, PSRP shells.

The wire layer of the simulator, the only part that imports psrpcore and pyspnego:

- ``soap``: safe parsing (defusedxml) of request envelopes, response envelopes, WSMan faults with the
  codes and texts of wsmerror.h.
- ``auth``: Basic, Negotiate/NTLM acceptor (per TCP connection) and WinRM message encryption; the
  process-wide NTLM credential store shared by every simulator of the process.
- ``tls``: the listener's self-signed certificate, kept in the state directory.
- ``convert``: psrpcore values <-> hvsim.powershell.values.
- ``shell``: one WinRS shell = one psrpcore runspace pool; pipelines run on a worker pool.
- ``service``: the WinRS operations (Create, Command, Send, Receive, Signal, Delete, Get, Enumerate).
- ``server``: the threaded HTTP(S) listeners.
"""
