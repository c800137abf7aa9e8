r"""FileSystem provider cmdlets on the host: C:\ and the drive letters of mounted VHDs.

Windows PowerShell 5.1 semantics: Set-Content/Add-Content default to the ANSI code page
(Windows-1252) and end every line with CRLF; -Encoding UTF8 writes a BOM; Get-Content splits
lines on CRLF/LF and detects a BOM; wildcards apply to -Path, never to -LiteralPath.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable
from typing import Any

from hvsim.core import paths as P
from hvsim.powershell.cmdlet import BoundCall, CmdletContext, cmdlet
from hvsim.powershell.errors import PSError
from hvsim.powershell.shaping import as_list, name_of
from hvsim.powershell.values import Byte, PSObj
from hvsim.storage import errors as SE
from hvsim.storage.handlers.objects import file_obj
from hvsim.storage.models import Entry, Location, Storage

_ENCODINGS: dict[str, tuple[str, bytes]] = {
    # FileSystemCmdletProviderEncoding (5.1) -> (Python codec, BOM written)
    "default": ("cp1252", b""),
    "ascii": ("ascii", b""),
    "utf8": ("utf-8", codecs.BOM_UTF8),
    "utf7": ("utf-7", b""),
    "utf32": ("utf-32-le", codecs.BOM_UTF32_LE),
    "unicode": ("utf-16-le", codecs.BOM_UTF16_LE),
    "string": ("utf-16-le", codecs.BOM_UTF16_LE),
    "unknown": ("utf-16-le", codecs.BOM_UTF16_LE),
    "bigendianunicode": ("utf-16-be", codecs.BOM_UTF16_BE),
    "bigendianutf32": ("utf-32-be", codecs.BOM_UTF32_BE),
    "oem": ("cp437", b""),
}


def encode_text(text: str, encoding: str | None) -> bytes:
    """Text to bytes as 5.1's content cmdlets write it (unmappable characters become '?')."""
    codec, bom = _ENCODINGS.get((encoding or "default").lower(), _ENCODINGS["default"])
    return bom + text.encode(codec, errors="replace")


def decode_bytes(data: bytes, encoding: str | None = None) -> str:
    """Bytes to text: an explicit encoding, else the BOM, else the ANSI code page."""
    if encoding and encoding.lower() not in ("default",):
        codec, bom = _ENCODINGS.get(encoding.lower(), _ENCODINGS["default"])
        if bom and data.startswith(bom):
            data = data[len(bom):]
        return data.decode(codec, errors="replace")
    for bom, codec in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF32_LE, "utf-32-le"),
                       (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")):
        if data.startswith(bom):
            return data[len(bom):].decode(codec, errors="replace")
    return data.decode("cp1252", errors="replace")


def _to_text(value: Any) -> str:
    if isinstance(value, PSObj):
        return value.to_string if value.to_string is not None else value.type_name
    if isinstance(value, bool):
        return "True" if value else "False"
    return "" if value is None else str(value)


def _content_bytes(call: BoundCall, newline: bool = True) -> bytes:
    """-Value as bytes: -Encoding Byte takes the values as bytes; otherwise lines with CRLF."""
    enc = name_of(call.get("Encoding")) if call.has("Encoding") else None
    values = as_list(call.get("Value"))
    if (enc or "").lower() == "byte" or call.get("AsByteStream"):
        flat = bytearray()  # labctl uploads files in chunks of a byte[]: keep it linear
        for v in values:
            if isinstance(v, bytes | bytearray):
                flat.extend(v)
            elif isinstance(v, list):
                flat.extend(int(x) for x in v)
            else:
                flat.append(int(v))
        return bytes(flat)
    if call.get("NoNewline"):
        text = "".join(_to_text(v) for v in values)
    else:
        text = "".join(_to_text(v) + "\r\n" for v in values)
    return encode_text(text, enc)


def _paths(call: BoundCall, default: str | None = None) -> tuple[list[str], bool]:
    """(-Path or -LiteralPath values, literal?)."""
    if call.has("LiteralPath"):
        return [str(p) for p in as_list(call.get("LiteralPath"))], True
    paths = [str(p) for p in as_list(call.get("Path"))]
    if not paths and default is not None:
        paths = [default]
    return paths, False


def _expand(st: Storage, path: str, literal: bool) -> list[tuple[Location, Entry]]:
    """Existing items a path names; wildcards in any component expand (sorted like the provider)."""
    full = P.normalize(path)
    if literal or not P.has_wildcard(full[3:]):
        loc = st.resolve(full)
        e = st.stat(loc)
        return [(loc, e)] if e else []
    parts = full[3:].split("\\")
    current = [full[:3]]
    for i, part in enumerate(parts):
        nxt: list[str] = []
        for base in current:
            if P.has_wildcard(part):
                loc = st.resolve(base)
                be = st.stat(loc)
                if be is None or not be.is_dir:
                    continue
                nxt.extend(c.path for c in st.children(loc) if P.wildcard_match(part, P.leaf(c.path))
                           and (c.is_dir or i == len(parts) - 1))
            else:
                nxt.append(base.rstrip("\\") + "\\" + part)
        current = nxt
    out = []
    for p in current:
        loc = st.resolve(p)
        e = st.stat(loc)
        if e:
            out.append((loc, e))
    return out


def _each_path(ctx: CmdletContext, call: BoundCall, not_found_id: str = "PathNotFound",
               default: str | None = None, bare: bool = False) -> list[tuple[Location, Entry]]:
    """The items -Path/-LiteralPath name; a path that names nothing (and is no wildcard pattern) is a
    non-terminating ItemNotFound error with ``not_found_id`` (``bare``: the id as it stands, no cmdlet suffix)."""
    st = ctx.world.storage
    paths, literal = _paths(call, default)
    out: list[tuple[Location, Entry]] = []
    for p in paths:
        try:
            found = _expand(st, p, literal)
        except PSError as exc:
            ctx.write_error(exc)
            continue
        if not found and (literal or not P.has_wildcard(p)):
            err = SE.path_not_found(P.normalize(p), not_found_id)
            err.bare = bare
            ctx.write_error(err)
        out.extend(found)
    return out


# --- cmdlets ------------------------------------------------------------------------------------


@cmdlet("Test-Path")
def test_path(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    st = ctx.world.storage
    paths, literal = _paths(call)
    ptype = name_of(call.get("PathType")) if call.has("PathType") else "Any"
    out: list[bool] = []
    for p in paths:
        if call.get("IsValid"):
            out.append(not any(c in p for c in '<>"|'))
            continue
        try:
            found = _expand(st, p, literal)
        except PSError:
            out.append(False)  # a missing drive is simply False for Test-Path
            continue
        if ptype == "Leaf":
            found = [f for f in found if not f[1].is_dir]
        elif ptype == "Container":
            found = [f for f in found if f[1].is_dir]
        out.append(bool(found))
    return out


@cmdlet("Get-Item")
def get_item(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    return [file_obj(ctx.world, e) for _, e in _each_path(ctx, call)]


@cmdlet("Get-ChildItem")
def get_child_item(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    w = ctx.world
    st = w.storage
    flt = str(call.get("Filter")) if call.has("Filter") else None
    include = [str(x) for x in as_list(call.get("Include"))]
    exclude = [str(x) for x in as_list(call.get("Exclude"))]
    items: list[Entry] = []
    for loc, e in _each_path(ctx, call, default=P.DEFAULT_CWD):
        if not e.is_dir:
            items.append(e)
            continue
        items.extend(st.walk(loc) if call.get("Recurse") else st.children(loc))
    if flt:
        items = [e for e in items if P.wildcard_match(flt, P.leaf(e.path))]
    if include:
        items = [e for e in items if any(P.wildcard_match(i, P.leaf(e.path)) for i in include)]
    if exclude:
        items = [e for e in items if not any(P.wildcard_match(x, P.leaf(e.path)) for x in exclude)]
    if call.get("File"):
        items = [e for e in items if not e.is_dir]
    if call.get("Directory"):
        items = [e for e in items if e.is_dir]
    if call.get("Name"):
        return [P.leaf(e.path) for e in items]
    return [file_obj(w, e) for e in items]


@cmdlet("Get-Content")
def get_content(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    st = ctx.world.storage
    enc = name_of(call.get("Encoding")) if call.has("Encoding") else None
    out: list[Any] = []
    for loc, e in _each_path(ctx, call):
        if e.is_dir:
            ctx.write_error(PSError(f"Unable to get content because it is a directory: '{e.path}'. Please use "
                                    "'Get-ChildItem' instead.", "GetContentReaderUnauthorizedAccessError",
                                    "ReadError", target=e.path,
                                    exception_type="System.UnauthorizedAccessException"))
            continue
        data = st.read(loc) or b""
        if (enc or "").lower() == "byte" or call.get("AsByteStream"):
            values: list[Any] = [Byte(b) for b in data]
            if call.get("Raw"):
                out.append(bytes(data))
                continue
        else:
            text = decode_bytes(data, enc)
            if call.get("Raw"):
                out.append(text)
                continue
            values = text.replace("\r\n", "\n").split("\n")
            if values and values[-1] == "":
                values.pop()  # a final newline ends the last line; it does not start a new one
        if call.has("TotalCount"):
            values = values[: int(call.get("TotalCount"))]
        if call.has("Tail"):
            n = int(call.get("Tail"))
            values = values[-n:] if n else []
        out.extend(values)
    return out


def _write_content(ctx: CmdletContext, call: BoundCall, append: bool, error_id: str) -> Iterable[Any]:
    w = ctx.world
    st = w.storage
    data = _content_bytes(call)
    paths, literal = _paths(call)
    out: list[Any] = []

    def one(p: str) -> None:
        targets = _expand(st, p, literal) if (not literal and P.has_wildcard(p)) else [(st.resolve(p), None)]
        for loc, e in targets:
            if e is not None and e.is_dir:
                raise PSError(f"Access to the path '{loc.path}' is denied.", f"{error_id}".replace(
                    "IOError", "UnauthorizedAccessError"), "PermissionDenied", target=loc.path,
                    exception_type="System.UnauthorizedAccessException")
            st.write(loc, data, append=append, error_id=error_id)
            w.dirty = True
            ctx.spend("host", "file_write")
            if call.get("PassThru"):
                out.extend(as_list(call.get("Value")))  # as each target is written: an error later keeps it

    ctx.each(paths, one)
    return out


@cmdlet("Set-Content")
def set_content(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    return _write_content(ctx, call, append=False, error_id="GetContentWriterIOError")  # id unconfirmed


@cmdlet("Add-Content")
def add_content(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    return _write_content(ctx, call, append=True, error_id="GetContentWriterIOError")  # id unconfirmed


@cmdlet("New-Item")
def new_item(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    w = ctx.world
    st = w.storage
    kind = (name_of(call.get("ItemType")) if call.has("ItemType") else "File").lower()
    force = bool(call.get("Force"))
    paths = [str(p) for p in as_list(call.get("Path"))] or [P.DEFAULT_CWD]

    def one(p: str) -> PSObj | None:
        full = P.normalize(p + ("\\" + str(call.get("Name")) if call.get("Name") else ""))
        loc = st.resolve(full)
        existing = st.stat(loc)
        if kind in ("directory", "container"):
            if existing is not None:
                if not force or not existing.is_dir:
                    raise SE.directory_exists(full)
            else:
                st.make_dir(loc)
        elif kind == "file":
            if existing is not None and (existing.is_dir or not force):
                raise SE.file_exists(full)
            parent = st.stat(Location(P.parent(full), loc.vhd_key))
            if parent is None:
                if not force:
                    raise SE.part_of_path_not_found(full, "NewItemIOError")
                st.make_dir(Location(P.parent(full), loc.vhd_key))
            value = call.get("Value")
            data = encode_text(_to_text(value), None) if value is not None else b""
            st.write(loc, data, error_id="NewItemIOError", dir_error_id="NewItemIOError")
            ctx.spend("host", "file_write")
        else:
            raise PSError("The type is not a known type for the file system. Only \"file\",\"directory\" or "
                          "\"symboliclink\" can be specified.", "Argument", "InvalidArgument", target=full,
                          exception_type="System.ArgumentException")
        w.dirty = True
        e = st.stat(loc)
        return file_obj(w, e) if e is not None else None

    return ctx.each(paths, one)


@cmdlet("Remove-Item")
def remove_item(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    w = ctx.world
    st = w.storage

    def one(item: tuple[Location, Entry]) -> None:
        loc, e = item
        if e.is_dir and st.children(loc) and not call.get("Recurse"):
            raise SE.directory_not_empty(e.path)
        if e.is_dir:
            # -Recurse goes on past what it cannot remove; each item's error, then its folder's.
            errors = st.remove_tree(loc)
            w.dirty = True
            for err in errors:
                ctx.write_error(err)
            return
        st.remove(loc)
        w.dirty = True

    ctx.each(_each_path(ctx, call), one)
    return []


def _copy_file(st: Storage, src: Location, src_entry: Entry, dst: Location, force: bool) -> None:
    """Copy one file; a VHD copied on C: stays a VHD (same disk identifier, like a file copy)."""
    existing = st.stat(dst)
    if existing is not None and existing.is_dir:
        raise SE.directory_exists(dst.path)
    sk = P.key(src.path)
    if src.vhd_key is None and dst.vhd_key is None and sk in st.vhds:
        if st.is_open(sk) and st.mounts.get(sk) is None:
            raise SE.file_in_use(src.path, "CopyFileInfoItemIOError")
        import copy as _copy

        vhd = _copy.deepcopy(st.vhds[sk])
        dk = P.key(dst.path)
        if dk in st.vhds and st.is_open(dk):
            raise SE.file_in_use(dst.path, "CopyFileInfoItemIOError")
        if vhd.file_size - (st.files[dk].size if dk in st.files else 0) > st.c_free:
            raise SE.disk_full(dst.path, "CopyFileInfoItemIOError")
        if st.stat(Location(P.parent(dst.path), None)) is None:
            raise SE.part_of_path_not_found(dst.path, "CopyFileInfoItemIOError")
        vhd.path = dst.path
        st.files.pop(dk, None)
        st.vhds.pop(dk, None)
        st._add_vhd_file(vhd)
        return
    data = st.read(src) or b""
    st.write(dst, data, error_id="CopyFileInfoItemIOError", dir_error_id="CopyFileInfoItemIOError")


@cmdlet("Copy-Item")
def copy_item(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    w = ctx.world
    st = w.storage
    dest_raw = str(call.get("Destination") or P.DEFAULT_CWD)
    force = bool(call.get("Force"))

    def one(item: tuple[Location, Entry]) -> PSObj | None:
        src, e = item
        dest = st.resolve(dest_raw)
        dest_entry = st.stat(dest)
        if dest_entry is not None and dest_entry.is_dir:
            target = st.resolve(dest.path.rstrip("\\") + "\\" + P.leaf(e.path))
        else:
            target = dest
        if e.is_dir:
            st.make_dir(target)
            for child in st.walk(src) if call.get("Recurse") else []:
                rel = child.path[len(e.path):]
                t = st.resolve(target.path.rstrip("\\") + rel)
                if child.is_dir:
                    st.make_dir(t)
                else:
                    _copy_file(st, Location(child.path, src.vhd_key), child, t, force)
        else:
            _copy_file(st, src, e, target, force)
            ctx.spend("host", "file_write", max(1.0, e.size / (50 * 1024**2)))
        w.dirty = True
        te = st.stat(target) if call.get("PassThru") else None
        return file_obj(w, te) if te is not None else None

    return ctx.each(_each_path(ctx, call), one)


# --- Get-FileHash -------------------------------------------------------------------------------

# Windows PowerShell 5.1's Get-FileHash is a module function: its output is a [PSCustomObject] whose type
# name it sets to Microsoft.Powershell.Utility.FileHash (PowerShell 6+ has a cmdlet returning FileHashInfo).
FILE_HASH_TYPES = ["Microsoft.Powershell.Utility.FileHash", "System.Management.Automation.PSCustomObject",
                   "System.Object"]
_HASHES = {"SHA1": "sha1", "SHA256": "sha256", "SHA384": "sha384", "SHA512": "sha512", "MD5": "md5",
           "RIPEMD160": "ripemd160"}


@cmdlet("Get-FileHash")
def get_file_hash(ctx: CmdletContext, call: BoundCall) -> Iterable[Any]:
    """Hash of each file -Path/-LiteralPath names (SHA256 by default; folders are skipped)."""
    import hashlib

    algorithm = str(call.get("Algorithm") or "SHA256").upper()
    if call.has("InputStream"):
        raise PSError("The simulated host does not model Get-FileHash -InputStream (no .NET streams cross the "
                      "wire); use -Path.", "InputStreamNotModelled", "NotImplemented",
                      exception_type="System.NotImplementedException", terminating=True)
    codec = _HASHES.get(algorithm)
    if codec is None or codec not in hashlib.algorithms_available:
        raise PSError(f"The simulated host does not model the {algorithm} algorithm of Get-FileHash.",
                      "AlgorithmNotModelled", "NotImplemented", exception_type="System.NotImplementedException",
                      terminating=True)
    st = ctx.world.storage
    out: list[Any] = []
    # The function resolves the paths with Resolve-Path: its error comes through.
    for loc, entry in _each_path(ctx, call, "PathNotFound,Microsoft.PowerShell.Commands.ResolvePathCommand",
                                 bare=True):
        if entry.is_dir:
            continue
        data = st.read(loc) or b""
        digest = hashlib.new(codec, data).hexdigest().upper()
        medium = st.medium_of(entry.path) if loc.vhd_key is None and loc.iso_key is None else None
        if medium is not None and medium.sha256 and codec == "sha256":
            digest = medium.sha256.upper()  # a seeded ISO's bytes are not kept: its published hash
        out.append(PSObj(list(FILE_HASH_TYPES), {"Algorithm": algorithm, "Hash": digest, "Path": entry.path}))
    return out
