"""The embedded Hyper-V host simulator.

It stands for a Windows Hyper-V host: it speaks WS-Management and PSRP on loopback and models
Hyper-V, the host's networking and storage, and the guests. It never imports the rest of labctl;
labctl reaches it only over the wire (WinRM for cmdlets, the control endpoint for test hooks).

One package per simulated surface, each with its ``models`` (state and rules, no PowerShell
objects), its ``handlers`` (the only code that shapes PowerShell output) and its ``errors`` (the
real texts and FullyQualifiedErrorIds):

- ``powershell``: the engine: parameter binding, the pipeline runtime, .NET values, errors, the
  cmdlet catalog, the cmdlet handler base (``cmdlet``), the engine's own cmdlets (``handlers``);
- ``wsman``: WS-Management and PSRP on the wire;
- ``hyperv``: VMs and the host; ``storage``: VHDs and file systems; ``networking``: switches, NAT;
- ``guest``: the guest OS (setup, features, PowerShell Direct) and the guest/host steps;
- ``docker``: the engine, registry and mirror, the CLI, the Engine API, the container-host steps;
- ``core``: clock and durations, counters, fault plans, paths, the HTTP server base.

``world`` holds every surface's state; ``step_registry`` lists every step module; ``server``
(``Simulator``) and ``control`` (``ControlClient``) are the API labctl uses.
"""
