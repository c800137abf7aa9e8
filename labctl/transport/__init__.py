"""How labctl talks to a Hyper-V host: typed cmdlet invocations in, plain values out."""
