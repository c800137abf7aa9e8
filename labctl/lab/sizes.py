"""Byte sizes as written in lab and image files ("4GiB", "4096MiB", "4GB").

Units follow the Windows/PowerShell convention: ``GB`` means the same as ``GiB`` (PowerShell's ``4GB``
literal is 4 * 1024**3 and Hyper-V Manager shows binary sizes), so ``4GB`` and ``4GiB`` are equal.
A bare number is refused: ``4096`` could mean bytes or MiB, and guessing wrong makes a 4 KiB VM.
"""

from __future__ import annotations

import re

_UNITS: dict[str, int] = {
    "KB": 1024, "KIB": 1024,
    "MB": 1024**2, "MIB": 1024**2,
    "GB": 1024**3, "GIB": 1024**3,
    "TB": 1024**4, "TIB": 1024**4,
}

SIZE_PATTERN = r"^\s*[0-9]+(\.[0-9]+)?\s*([KkMmGgTt][Ii]?[Bb])\s*$"
_SIZE_RE = re.compile(SIZE_PATTERN)


class SizeError(ValueError):
    """A size string is malformed."""


def parse_size(value: object) -> int:
    """Parse "4GiB"/"4096MiB"/"4GB" into bytes; raise SizeError with a message saying what is accepted."""
    if isinstance(value, bool) or not isinstance(value, str):
        got = "a bare number" if isinstance(value, int | float) else type(value).__name__
        raise SizeError(f"a size needs a unit, like \"4GiB\" or \"4096MiB\"; got {got}")
    m = _SIZE_RE.match(value)
    if not m:
        raise SizeError(f"{value!r} is not a size; write a number and a unit: KiB, MiB, GiB, TiB "
                        "(KB, MB, GB, TB mean the same, as in PowerShell)")
    number = value.strip()[: -len(m.group(2))].strip()
    unit = _UNITS[m.group(2).upper()]
    if "." in number:
        whole, frac = number.split(".")
        # Exact arithmetic: 1.5GiB must be exactly 1536 MiB, not a float rounding away a byte.
        size = int(whole) * unit + int(frac) * unit // 10 ** len(frac)
    else:
        size = int(number) * unit
    if size <= 0:
        raise SizeError(f"{value!r} is zero; a size must be positive")
    return size


def format_size(size: int) -> str:
    """Render bytes the way a user would write them: the largest binary unit that divides evenly."""
    for unit, factor in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= factor and size % factor == 0:
            return f"{size // factor}{unit}"
    for unit, factor in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2)):
        if size >= factor:
            return f"{size / factor:.2f}{unit}"
    return f"{size} bytes"
