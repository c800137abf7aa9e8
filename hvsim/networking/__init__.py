"""Networking: virtual switches, host adapters and addresses, NAT."""
