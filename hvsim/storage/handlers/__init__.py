"""The storage cmdlets: VHDs (New-VHD, Mount-VHD...), the Storage module (Get-Disk, Get-Partition, Get-Volume)
and the FileSystem provider (Get-Item, Copy-Item...); objects shapes the storage objects other surfaces show."""
