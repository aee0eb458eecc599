"""Model backups at any fsspec URI: copy, verify, restore.

Layout of a backup destination ``DEST`` (one per model, e.g. ``s3://b/backups/prod/ranker``)::

    DEST/<version>/            every file of the artifact, byte for byte, manifest.json included
    DEST/<version>/backup.json the publication record, written last: version, source, takenAt,
                               manifest sha256, total size, keep
    DEST/.incoming-<version>-<token>/   a backup being written (never counted as a backup)

A backup is written under ``.incoming-…``, every file re-read and checked against the
manifest's sha256, then moved to ``<version>`` and published by writing ``backup.json`` (a
rename on local disks; on object stores the record written last is what makes it visible).
A version already backed up and intact is not copied again.

``verify_backups`` re-hashes everything stored and says, per backup, ``intact``,
``corrupted`` (a file differs from its digest) or ``incomplete`` (a file or the record is
missing, or a write never finished). Nothing here deletes a published backup.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import fsspec

from rankops.serving.artifact import MANIFEST, verify_artifact

RECORD = "backup.json"
INCOMING = ".incoming-"
RECORD_FORMAT = 1
INTACT, CORRUPTED, INCOMPLETE = "intact", "corrupted", "incomplete"

Progress = Callable[[str], None]


class BackupInputError(ValueError):
    """Bad input: nothing to back up or restore, or a destination that cannot be written."""


class BackupCheckError(Exception):
    """A check failed (a corrupted source or backup, a restore that does not match)."""


@dataclass(frozen=True)
class BackupStatus:
    version: str
    uri: str
    status: str
    problems: list[str] = field(default_factory=list)
    record: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"version": self.version, "uri": self.uri, "status": self.status}
        if self.problems:
            out["problems"] = self.problems
        for key in ("takenAt", "manifestSha256", "sizeBytes", "keep", "source"):
            if key in self.record:
                out[key] = self.record[key]
        return out


def _fs(uri: str) -> tuple[fsspec.AbstractFileSystem, str]:
    if not uri:
        raise BackupInputError("empty URI")
    try:
        fs, path = fsspec.core.url_to_fs(uri)
    except (ImportError, ValueError) as exc:
        raise BackupInputError(f"cannot open {uri}: {exc}") from exc
    return fs, path.rstrip("/") or "/"


def _unstrip(uri: str, path: str) -> str:
    """A child URI with the original protocol (``file:///x`` stays ``file://``)."""
    return f"{uri.rstrip('/')}/{path}"


def _manifest(fs: fsspec.AbstractFileSystem, base: str, uri: str) -> tuple[bytes, dict[str, Any]]:
    path = f"{base}/{MANIFEST}"
    if not fs.exists(path):
        raise BackupInputError(f"no model artifact at {uri} ({MANIFEST} not found)")
    raw = fs.cat_file(path)
    try:
        manifest = json.loads(raw)
    except ValueError as exc:
        raise BackupCheckError(f"{uri}/{MANIFEST} is not valid JSON: {exc}") from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise BackupCheckError(f"{uri}/{MANIFEST} has no 'files' table")
    return raw, manifest


def _version_of(manifest: dict[str, Any], uri: str) -> str:
    version = str(manifest.get("version") or "")
    if not version or "/" in version or version.startswith("."):
        raise BackupCheckError(f"{uri}/{MANIFEST}: unusable version {version!r}")
    return version


def _record(fs: fsspec.AbstractFileSystem, path: str) -> dict[str, Any] | None:
    if not fs.exists(path):
        return None
    try:
        record = json.loads(fs.cat_file(path))
    except ValueError:
        return {}
    return record if isinstance(record, dict) else {}


def _write_atomic(fs: fsspec.AbstractFileSystem, path: str, data: bytes) -> None:
    tmp = f"{path}.{secrets.token_hex(4)}.tmp"
    with fs.open(tmp, "wb") as f:
        f.write(data)
    fs.mv(tmp, path)


def check_backup(uri: str) -> BackupStatus:
    """Re-hash one published backup directory (``DEST/<version>``)."""
    fs, base = _fs(uri)
    version = base.rsplit("/", 1)[-1]
    record = _record(fs, f"{base}/{RECORD}")
    problems = verify_artifact(uri)
    if record is None:
        return BackupStatus(version, uri, INCOMPLETE, [f"{RECORD}: missing (never published)", *problems])
    if not record:
        return BackupStatus(version, uri, CORRUPTED, [f"{RECORD}: unreadable", *problems])
    if fs.exists(f"{base}/{MANIFEST}"):
        digest = hashlib.sha256(fs.cat_file(f"{base}/{MANIFEST}")).hexdigest()
        if digest != record.get("manifestSha256"):
            problems.append(
                f"{MANIFEST}: sha256 {digest} differs from {RECORD} ({record.get('manifestSha256')})"
            )
    if not problems:
        return BackupStatus(version, uri, INTACT, [], record)
    missing = all(p.endswith(": missing") for p in problems)
    return BackupStatus(version, uri, INCOMPLETE if missing else CORRUPTED, problems, record)


def backup(
    model_uri: str,
    dest: str,
    *,
    keep: bool = False,
    progress: Progress = print,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Copy the artifact at ``model_uri`` to ``dest/<version>``; see the module docstring."""
    src_fs, src = _fs(model_uri)
    manifest_raw, manifest = _manifest(src_fs, src, model_uri)
    version = _version_of(manifest, model_uri)
    manifest_sha = hashlib.sha256(manifest_raw).hexdigest()
    progress(f"verifying source {model_uri} (version {version})")
    problems = verify_artifact(model_uri)
    if problems:
        raise BackupCheckError(f"source artifact {model_uri} failed verification: " + "; ".join(problems))
    dst_fs, dst = _fs(dest)
    final = f"{dst}/{version}"
    final_uri = _unstrip(dest, version)
    if dst_fs.exists(final):
        existing = check_backup(final_uri)
        if existing.status == INTACT and existing.record.get("manifestSha256") == manifest_sha:
            progress(f"{final_uri}: version {version} already backed up and intact; nothing copied")
            return {"version": version, "uri": final_uri, "copied": False, **existing.to_json()}
        if existing.status == INTACT:
            raise BackupCheckError(
                f"{final_uri} holds a different artifact for version {version} (manifest sha256 "
                f"{existing.record.get('manifestSha256')} vs {manifest_sha}): versions are immutable"
            )
        if existing.status == CORRUPTED:
            raise BackupCheckError(
                f"the existing backup {final_uri} is corrupted ({'; '.join(existing.problems)}); "
                "left in place for inspection, move it aside to back up again"
            )
        progress(f"{final_uri}: an unpublished copy is in the way; replacing it")
        dst_fs.rm(final, recursive=True)
    incoming = f"{dst}/{INCOMING}{version}-{secrets.token_hex(4)}"
    try:
        dst_fs.makedirs(incoming, exist_ok=True)
    except OSError as exc:
        raise BackupInputError(f"cannot write to {dest}: {exc}") from exc
    try:
        names = sorted(manifest["files"])
        total = len(manifest_raw)
        for i, name in enumerate(names, 1):
            data = src_fs.cat_file(f"{src}/{name}")
            total += len(data)
            with dst_fs.open(f"{incoming}/{name}", "wb") as f:
                f.write(data)
            progress(f"copied {name} ({len(data)} bytes) [{i}/{len(names)}]")
        with dst_fs.open(f"{incoming}/{MANIFEST}", "wb") as f:
            f.write(manifest_raw)
        problems = verify_artifact(_unstrip(dest, incoming.rsplit("/", 1)[-1]))
        if problems:
            raise BackupCheckError(f"the copy at {dest} failed verification: " + "; ".join(problems))
        progress("every sha256 matches the manifest; publishing")
        dst_fs.mv(incoming, final, recursive=True)
    except BaseException:
        if dst_fs.exists(incoming):
            dst_fs.rm(incoming, recursive=True)
        raise
    taken = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).replace(microsecond=0)
    record = {
        "format": RECORD_FORMAT,
        "version": version,
        "name": manifest.get("name"),
        "source": model_uri,
        "takenAt": taken.isoformat().replace("+00:00", "Z"),
        "manifestSha256": manifest_sha,
        "sizeBytes": total,
        "keep": keep,
    }
    _write_atomic(dst_fs, f"{final}/{RECORD}", (json.dumps(record, indent=2, sort_keys=True) + "\n").encode())
    published = check_backup(final_uri)
    if published.status != INTACT:
        raise BackupCheckError(
            f"{final_uri} after publishing: {published.status}: {'; '.join(published.problems)}"
        )
    progress(f"backed up version {version} to {final_uri}")
    return {"version": version, "uri": final_uri, "copied": True, **published.to_json()}


def verify_backups(dest: str, *, progress: Progress = print) -> list[BackupStatus]:
    """The state of every backup at ``dest``, oldest version name first; leftover writes count
    as ``incomplete``."""
    fs, base = _fs(dest)
    if not fs.isdir(base):
        raise BackupInputError(f"no backup destination at {dest}")
    out = []
    for entry in sorted(fs.ls(base, detail=True), key=lambda e: e["name"]):
        if entry.get("type") != "directory":
            continue
        name = entry["name"].rstrip("/").rsplit("/", 1)[-1]
        uri = _unstrip(dest, name)
        if name.startswith(INCOMING):
            status = BackupStatus(
                name[len(INCOMING) :].rsplit("-", 1)[0], uri, INCOMPLETE, ["write never finished"]
            )
        elif name.startswith("."):
            continue
        else:
            status = check_backup(uri)
        progress(f"{uri}: {status.status}" + (f" ({'; '.join(status.problems)})" if status.problems else ""))
        out.append(status)
    return out


def restore(version: str, source: str, target: str, *, progress: Progress = print) -> dict[str, Any]:
    """Copy ``source/<version>`` to ``target`` and check it is byte-identical to the backup.

    Refuses a target that already holds an artifact (published versions are immutable)."""
    src_fs, src = _fs(source)
    backup_dir = f"{src}/{version}"
    backup_uri = _unstrip(source, version)
    if not version or "/" in version or not src_fs.exists(f"{backup_dir}/{RECORD}"):
        have = []
        if src_fs.isdir(src):
            have = sorted(e.rsplit("/", 1)[-1] for e in src_fs.ls(src, detail=False) if "/." not in e)
        raise BackupInputError(
            f"no published backup of version {version!r} at {source} (have: {', '.join(have) or 'none'})"
        )
    state = check_backup(backup_uri)
    if state.status != INTACT:
        raise BackupCheckError(f"backup {backup_uri} is {state.status}: {'; '.join(state.problems)}")
    dst_fs, dst = _fs(target)
    if dst_fs.exists(f"{dst}/{MANIFEST}"):
        raise BackupInputError(f"{target} already holds an artifact; restore into an empty location")
    _, manifest = _manifest(src_fs, backup_dir, backup_uri)
    names = [*sorted(manifest["files"]), MANIFEST]
    try:
        dst_fs.makedirs(dst, exist_ok=True)
    except OSError as exc:
        raise BackupInputError(f"cannot write to {target}: {exc}") from exc
    mismatched = []
    for i, name in enumerate(names, 1):
        data = src_fs.cat_file(f"{backup_dir}/{name}")
        with dst_fs.open(f"{dst}/{name}", "wb") as f:
            f.write(data)
        if hashlib.sha256(dst_fs.cat_file(f"{dst}/{name}")).digest() != hashlib.sha256(data).digest():
            mismatched.append(name)
        progress(f"restored {name} ({len(data)} bytes) [{i}/{len(names)}]")
    if mismatched:
        raise BackupCheckError(f"restored files differ from the backup: {', '.join(mismatched)}")
    return {"version": version, "from": backup_uri, "to": target, "files": len(names), "bitIdentical": True}
