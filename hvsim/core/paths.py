"""Windows path handling for the simulated host: normalisation and case-insensitive keys."""

from __future__ import annotations

import re

# WinRM sessions start in the connecting user's Documents folder.
DEFAULT_CWD = "C:\\Users\\Administrator\\Documents"
_PROVIDER_PREFIX = re.compile(r"^(Microsoft\.PowerShell\.Core\\)?FileSystem::", re.IGNORECASE)
_DRIVE = re.compile(r"^([A-Za-z]):")


def normalize(path: str, cwd: str = DEFAULT_CWD) -> str:
    r"""Absolute, backslashed path with '.'/'..' resolved: ``c:/a/./b/`` -> ``C:\a\b``."""
    text = _PROVIDER_PREFIX.sub("", str(path).strip().strip('"')).replace("/", "\\")
    if text.startswith("\\\\"):
        return text  # UNC: kept as given (the simulator has no shares)
    m = _DRIVE.match(text)
    if m:
        drive = m.group(1).upper()
        rest = text[2:]
        if not rest.startswith("\\"):
            rest = "\\" + rest  # "C:foo" -> relative to the drive root (no per-drive cwd modeled)
    elif text.startswith("\\"):
        drive, rest = cwd[0].upper(), text
    else:
        drive, rest = cwd[0].upper(), cwd[2:] + "\\" + text
    parts: list[str] = []
    for part in rest.split("\\"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part.rstrip(" "))
    return f"{drive}:\\" + "\\".join(parts)


def key(path: str) -> str:
    """Case-insensitive dictionary key for a normalized path."""
    return path.lower()


def drive_of(path: str) -> str:
    """Drive letter (upper case) of a normalized path."""
    return path[0].upper()


def inner(path: str) -> str:
    r"""The drive-relative part with a leading backslash: ``E:\Windows`` -> ``\Windows``."""
    return path[2:] or "\\"


def parent(path: str) -> str:
    r"""Parent directory of a normalized path (a root is its own parent)."""
    if len(path) <= 3:
        return path
    head, _, _ = path.rpartition("\\")
    return head if len(head) > 2 else head + "\\"


def leaf(path: str) -> str:
    return path.rpartition("\\")[2] if len(path) > 3 else path


def extension(path: str) -> str:
    name = leaf(path)
    return name[name.rfind("."):] if "." in name else ""


def norm_inner(inner_path: str) -> str:
    r"""Normalize a volume-relative path (``Windows/Panther/`` -> ``\Windows\Panther``)."""
    full = normalize("X:\\" + str(inner_path).replace("/", "\\").lstrip("\\"))
    return full[2:] or "\\"


def wildcard_regex(pattern: str) -> re.Pattern[str]:
    """PowerShell wildcard (* ? [a-z]) to a case-insensitive anchored regex."""
    out = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        elif ch == "[":
            end = pattern.find("]", i)
            if end == -1:
                out.append(re.escape(ch))
            else:
                out.append("[" + pattern[i + 1:end] + "]")
                i = end
        elif ch == "`" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("^" + "".join(out) + "$", re.IGNORECASE | re.DOTALL)


def has_wildcard(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")


def wildcard_match(pattern: str, text: str) -> bool:
    return bool(wildcard_regex(pattern).match(text))
