"""The storage cmdlets: VHDs (New-VHD, Mount-VHD...) and the FileSystem provider (Get-Item, Copy-Item...)."""
