"""Backups at a destination (any fsspec URI), as the operator's prune step sees them.

Reads the layout ``rankops backup`` writes (``DEST/<version>/`` with the artifact's files,
``manifest.json`` and the publication record ``backup.json``) without the serving stack: a
backup counts as verified when its record is there, its manifest matches the record's
sha256 and every file listed in the manifest matches its sha256 and size. ``.incoming-…``
directories (writes in progress or abandoned) are never listed, so never deleted.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import fsspec

from rankops.operator.core.maintenance.retention import Backup
from rankops.operator.core.timeutil import parse_time

RECORD = "backup.json"
MANIFEST = "manifest.json"


class BackupStoreError(ValueError):
    """The destination cannot be read."""


@dataclass(frozen=True)
class StoredBackup:
    backup: Backup
    uri: str
    size_bytes: int
    manifest_sha256: str
    problems: tuple[str, ...]


def _fs(uri: str) -> tuple[fsspec.AbstractFileSystem, str]:
    try:
        fs, path = fsspec.core.url_to_fs(uri)
    except (ImportError, ValueError) as exc:
        raise BackupStoreError(f"cannot open {uri}: {exc}") from exc
    return fs, path.rstrip("/") or "/"


def _problems(
    fs: fsspec.AbstractFileSystem, base: str, record: dict[str, Any], *, files: bool = True
) -> list[str]:
    path = f"{base}/{MANIFEST}"
    if not fs.exists(path):
        return [f"{MANIFEST}: missing"]
    raw = fs.cat_file(path)
    if hashlib.sha256(raw).hexdigest() != record.get("manifestSha256"):
        return [f"{MANIFEST}: sha256 differs from {RECORD}"]
    try:
        listed = json.loads(raw).get("files", {})
    except (ValueError, AttributeError):
        return [f"{MANIFEST}: unreadable"]
    out: list[str] = []
    for name, entry in sorted(listed.items() if files else ()):
        fpath = f"{base}/{name}"
        if not fs.exists(fpath):
            out.append(f"{name}: missing")
            continue
        data = fs.cat_file(fpath)
        if len(data) != entry.get("size", len(data)) or hashlib.sha256(data).hexdigest() != entry.get(
            "sha256"
        ):
            out.append(f"{name}: sha256 mismatch")
    return out


def list_backups(dest: str, model: str, *, verify: bool = True) -> list[StoredBackup]:
    """Every published backup at ``dest``; unreadable ones come back unverified. Without
    ``verify`` only the records and manifests are read (``verified``: the manifest matches its
    record), not every file: the inventory the controller keeps in status."""
    fs, base = _fs(dest)
    if not fs.isdir(base):
        raise BackupStoreError(f"no backup destination at {dest}")
    out = []
    for entry in sorted(fs.ls(base, detail=False)):
        name = entry.rstrip("/").rsplit("/", 1)[-1]
        if name.startswith(".") or not fs.isdir(entry):
            continue
        record_path = f"{base}/{name}/{RECORD}"
        if not fs.exists(record_path):
            continue  # never published: not a backup (verify-backups reports it)
        try:
            record = json.loads(fs.cat_file(record_path))
            taken = parse_time(str(record["takenAt"]))
        except (ValueError, KeyError, TypeError):
            record, taken = {}, None
        if taken is None:
            problems = [f"{RECORD}: unreadable"]
        else:
            problems = _problems(fs, f"{base}/{name}", record, files=verify)
        if taken is None:
            taken = parse_time("1970-01-01T00:00:00Z")
        assert taken is not None
        out.append(
            StoredBackup(
                Backup(
                    name,
                    model,
                    str(record.get("version", name)),
                    taken,
                    not problems,
                    bool(record.get("keep")),
                ),
                f"{dest.rstrip('/')}/{name}",
                int(record.get("sizeBytes", 0) or 0),
                str(record.get("manifestSha256", "")),
                tuple(problems),
            )
        )
    return out


def delete_backup(dest: str, backup_id: str) -> None:
    """Unpublish first (the record goes before the files), so a half-deleted backup is never
    taken for a whole one."""
    fs, base = _fs(dest)
    if "/" in backup_id or backup_id.startswith("."):
        raise BackupStoreError(f"not a backup id: {backup_id!r}")
    fs.rm(f"{base}/{backup_id}/{RECORD}")
    fs.rm(f"{base}/{backup_id}", recursive=True)
