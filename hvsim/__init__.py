"""The embedded Hyper-V host simulator.

It stands for a Windows Hyper-V host: it speaks WS-Management and PSRP on loopback and models
Hyper-V, the host's networking and storage, and the guests. It never imports the rest of labctl;
labctl reaches it only over the wire (WinRM for cmdlets, the control endpoint for test hooks).
"""
