"""PowerShell's out-of-process (OOP) PSRP server of the SIMULATED host (what ``pwsh -s`` / sshd's subsystem speak).

- ``framing``: the packet codec (``<Data ...>``, ``<Command ...>``, acks), no I/O.
- ``session``: :class:`~hvsim.oop.session.OopSession`, one session over a byte stream against the live world.
- ``relay``: the simulator's loopback listener for ``python -m hvsim.oop --state DIR`` (token-authenticated).
"""
