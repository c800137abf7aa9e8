"""The simulated Windows Hyper-V host: pure state and rules, no XML, HTTP or psrpcore."""
