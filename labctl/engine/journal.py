"""The lab journal: what labctl created on the host and how far each VM got.

It lives in the lab directory (.labctl/<lab>/journal.json) and is rewritten atomically after
every change, so a crash, Ctrl-C or SIGKILL leaves either the old or the new version, never a
torn file. It records names, ids and paths only: never a secret.
"""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path
from typing import Any

from labctl.fsio import atomic_write

VERSION = 1


class Journal:
    """Thread-safe record of created resources and completed stages."""

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path = path
        self._data = data
        self._lock = threading.Lock()

    @classmethod
    def open(cls, path: Path, lab: str) -> Journal:
        """Load the journal, or start one with a new lab id."""
        if path.exists():
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("lab") != lab:
                raise ValueError(f"{path} belongs to lab {data.get('lab')!r}, not {lab!r}")
        else:
            data = {"version": VERSION, "lab": lab, "lab_id": uuid.uuid4().hex[:12],
                    "host": {}, "vms": {}}
        return cls(path, data)

    def persist(self) -> None:
        """Write the journal now (a new one too), so that the lab id in the ownership tags of what the run
        creates next is on disk before anything carries it: a run killed after its first creation still
        recognises its own things."""
        with self._lock:
            if not self.path.exists():
                self._save()

    @property
    def exists(self) -> bool:
        return self.path.exists()

    @property
    def lab_id(self) -> str:
        return str(self._data["lab_id"])

    @staticmethod
    def read_lab_id(path: Path) -> str | None:
        """The lab id recorded in the journal at ``path``; None when there is none or it cannot be read."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        value = data.get("lab_id") if isinstance(data, dict) else None
        return str(value) if value else None

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return json.loads(json.dumps(self._data))

    def _save(self) -> None:
        # One line, keys sorted: without ``indent`` json uses its C encoder (about 5x faster; the journal is
        # rewritten after every stage of every VM, so this is controller CPU per stage). Readers parse it.
        atomic_write(self.path, json.dumps(self._data, sort_keys=True) + "\n")

    # host-wide resources: switch, gateway, nat
    def host_resource(self, kind: str) -> dict[str, Any] | None:
        with self._lock:
            value = self._data["host"].get(kind)
            return dict(value) if value else None

    def record_host(self, kind: str, **fields: Any) -> None:
        with self._lock:
            self._data["host"][kind] = fields
            self._save()

    def merge_host(self, kind: str, key: str, value: Any) -> None:
        """Set one entry of a lab-level mapping (e.g. the shared container images) without replacing the rest."""
        with self._lock:
            current = self._data["host"].get(kind)
            if not isinstance(current, dict):
                current = {}
                self._data["host"][kind] = current
            current[key] = value
            self._save()

    def forget_host(self, kind: str) -> None:
        with self._lock:
            if self._data["host"].pop(kind, None) is not None:
                self._save()

    # per VM
    def vm(self, name: str) -> dict[str, Any]:
        with self._lock:
            return json.loads(json.dumps(self._data["vms"].get(name, {})))

    def vm_names(self) -> list[str]:
        with self._lock:
            return sorted(self._data["vms"])

    def record_vm(self, name: str, **fields: Any) -> None:
        with self._lock:
            self._data["vms"].setdefault(name, {"stages": []}).update(fields)
            self._save()

    def stage_done(self, name: str, stage: str) -> None:
        with self._lock:
            entry = self._data["vms"].setdefault(name, {"stages": []})
            if stage not in entry["stages"]:
                entry["stages"].append(stage)
                self._save()

    def has_stage(self, name: str, stage: str) -> bool:
        with self._lock:
            return stage in self._data["vms"].get(name, {}).get("stages", [])

    def forget_vm(self, name: str) -> None:
        with self._lock:
            if self._data["vms"].pop(name, None) is not None:
                self._save()

    # lab-wide snapshots (labctl.engine.snapshots): an optional top-level "snapshots" mapping, name -> record
    # ({"created", "checkpoint_type", "state": "pending"|"complete", "vms": {vm: {"id", "vm_id"}}, "before"}).
    # A journal without it (written before snapshots existed) has none; older labctl versions keep it as is.
    def lab_snapshots(self) -> dict[str, dict[str, Any]]:
        """Every recorded snapshot by name (copies)."""
        with self._lock:
            return json.loads(json.dumps(self._data.get("snapshots") or {}))

    def record_lab_snapshot(self, name: str, record: dict[str, Any]) -> None:
        with self._lock:
            self._data.setdefault("snapshots", {})[name] = json.loads(json.dumps(record))
            self._save()

    def forget_lab_snapshot(self, name: str) -> None:
        with self._lock:
            if (self._data.get("snapshots") or {}).pop(name, None) is not None:
                self._save()

    def delete(self) -> None:
        self.path.unlink(missing_ok=True)
