"""Storage: VHD/VHDX files, mounted disks, the host and guest file systems."""
