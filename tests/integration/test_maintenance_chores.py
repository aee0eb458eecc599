"""The MaintenanceWindow's Job commands run for real, as local processes, on the bundled model.

One artifact is trained per test session (``rankops train`` on examples/data/datasets, 2
epochs). Backup, verify and restore round-trip it bit for bit; a corrupted stored file is
detected and nothing is deleted; bad input exits 2 with a message and leaves what was there.
"""

from __future__ import annotations

import filecmp
import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.integration.maintenance_support import BUNDLED, rankops, trained_bundled_model


@pytest.fixture(scope="session")
def bundled_model() -> Path:
    return trained_bundled_model()


@pytest.fixture
def model(bundled_model: Path, tmp_path: Path) -> Iterator[Path]:
    """A private copy (tests corrupt theirs)."""
    copy = tmp_path / "model"
    shutil.copytree(bundled_model, copy)
    yield copy


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_backup_verify_restore_round_trip_is_bit_identical(model: Path, tmp_path: Path) -> None:
    dest = tmp_path / "backups"
    code, result, err = rankops(
        "backup", "--model", f"file://{model}", "--to", f"file://{dest}", process=True
    )
    assert code == 0, err
    assert result is not None and result["ok"] and result["copied"] and result["status"] == "intact"
    assert "every sha256 matches the manifest" in err
    assert sorted(p.name for p in dest.iterdir()) == ["1.0.0"]  # no temporary left behind

    # Idempotent: the intact backup is not copied again.
    before = {p.name: p.stat().st_mtime_ns for p in (dest / "1.0.0").iterdir()}
    code, result, _ = rankops("backup", "--model", str(model), "--to", str(dest))
    assert code == 0 and result is not None and result["copied"] is False
    assert {p.name: p.stat().st_mtime_ns for p in (dest / "1.0.0").iterdir()} == before

    code, result, _ = rankops("verify-backups", "--at", str(dest))
    assert code == 0 and result is not None
    assert (result["intact"], result["corrupted"], result["incomplete"]) == (1, 0, 0)

    restored = tmp_path / "restored"
    code, result, err = rankops(
        "restore", "--version", "1.0.0", "--from", str(dest), "--to", str(restored), process=True
    )
    assert code == 0, err
    assert result is not None and result["bitIdentical"] and result["goldenOk"]
    assert result["goldenNdcgAt3"] == pytest.approx(result["manifestNdcgAt3"], abs=1e-9)
    original = tree_bytes(model)
    assert tree_bytes(restored) == original
    assert filecmp.cmp(model / "model.pt", restored / "model.pt", shallow=False)


def test_corrupted_stored_file_is_detected_and_nothing_is_deleted(model: Path, tmp_path: Path) -> None:
    dest = tmp_path / "backups"
    assert rankops("backup", "--model", str(model), "--to", str(dest))[0] == 0
    weights = dest / "1.0.0" / "model.pt"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    stored = tree_bytes(dest)

    code, result, err = rankops("verify-backups", "--at", str(dest))
    assert code == 1
    assert result is not None and result["corrupted"] == 1 and not result["ok"]
    (entry,) = result["backups"]
    assert entry["status"] == "corrupted" and any("model.pt: sha256 mismatch" in p for p in entry["problems"])

    # Retention never deletes what it cannot verify; backing up again does not overwrite it.
    code, result, _ = rankops(
        "prune-backups", "--at", str(dest), "--daily", "0", "--weekly", "0", "--monthly", "0"
    )
    assert code == 0 and result is not None and result["deleted"] == [] and result["unverified"] == ["1.0.0"]
    code, result, err = rankops("backup", "--model", str(model), "--to", str(dest))
    assert code == 1 and "corrupted" in err and result is not None and not result["ok"]
    # Restoring it fails the check and writes nothing.
    target = tmp_path / "restored"
    code, _, err = rankops("restore", "--version", "1.0.0", "--from", str(dest), "--to", str(target))
    assert code == 1 and "corrupted" in err and not target.exists()
    assert tree_bytes(dest) == stored


def test_incomplete_backups_are_reported(model: Path, tmp_path: Path) -> None:
    dest = tmp_path / "backups"
    assert rankops("backup", "--model", str(model), "--to", str(dest))[0] == 0
    shutil.copytree(dest / "1.0.0", dest / "1.0.1")
    (dest / "1.0.1" / "backup.json").unlink()  # never published
    shutil.copytree(dest / "1.0.0", dest / ".incoming-1.0.2-abcd")  # a write that never finished
    (dest / "1.0.0" / "golden.jsonl").unlink()
    code, result, _ = rankops("verify-backups", "--at", str(dest))
    assert code == 1 and result is not None
    assert {b["version"]: b["status"] for b in result["backups"]} == {
        "1.0.0": "incomplete",
        "1.0.1": "incomplete",
        "1.0.2": "incomplete",
    }


def test_bad_input_exits_2_with_a_message_and_loses_nothing(model: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    code, _, err = rankops("backup", "--model", str(model), "--to", str(blocker / "backups"), process=True)
    assert code == 2 and "cannot write" in err
    assert blocker.read_text() == "not a directory"

    code, _, err = rankops("backup", "--model", str(tmp_path / "nothing-here"), "--to", str(tmp_path / "b"))
    assert code == 2 and "no model artifact" in err

    dest = tmp_path / "backups"
    assert rankops("backup", "--model", str(model), "--to", str(dest))[0] == 0
    stored = tree_bytes(dest)
    code, _, err = rankops("restore", "--version", "9.9.9", "--from", str(dest), "--to", str(tmp_path / "r"))
    assert code == 2 and "no published backup of version '9.9.9'" in err and "have: 1.0.0" in err
    # A restore never writes over an artifact.
    code, _, err = rankops("restore", "--version", "1.0.0", "--from", str(dest), "--to", str(model))
    assert code == 2 and "already holds an artifact" in err
    code, _, err = rankops("verify-backups", "--at", str(tmp_path / "no-such-destination"))
    assert code == 2 and "no backup destination" in err

    # A corrupted source artifact is refused (a failed check) and nothing is published.
    (model / "catalog.jsonl").write_text("{}\n")
    code, result, err = rankops("backup", "--model", str(model), "--to", str(tmp_path / "other"))
    assert code == 1 and "failed verification" in err and "catalog.jsonl" in err
    assert result is not None and not result["ok"]
    assert not (tmp_path / "other").exists() or not any((tmp_path / "other").iterdir())
    assert tree_bytes(dest) == stored


def _version_copy(model: Path, root: Path, version: str) -> Path:
    """Another "version": the same files under a manifest naming ``version`` (still verifies)."""
    out = root / f"src-{version}"
    shutil.copytree(model, out)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["version"] = version
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def test_prune_follows_the_pure_selection_and_keeps_protected_versions(model: Path, tmp_path: Path) -> None:
    from rankops.operator.core.maintenance.retention import Backup, Retention, select_for_deletion
    from rankops.serving.backups import backup

    dest = tmp_path / "backups"
    start = datetime(2026, 1, 1, 6, tzinfo=UTC)
    taken = {f"1.{i}.0": start + timedelta(days=3 * i) for i in range(12)}
    for version, when in taken.items():
        backup(str(_version_copy(model, tmp_path, version)), str(dest), now=when, progress=lambda _: None)
    backups = [Backup(v, "ranker", v, t, True) for v, t in taken.items()]
    expected = {
        b.version
        for b in select_for_deletion(backups, Retention(2, 2, 1), "Europe/Berlin", [("ranker", "1.1.0")])
    }
    assert expected and "1.1.0" not in expected

    code, result, err = rankops(
        "prune-backups", "--at", str(dest), "--model-name", "ranker", "--time-zone", "Europe/Berlin",
        "--daily", "2", "--weekly", "2", "--monthly", "1", "--protect", "1.1.0", "--dry-run",
    )  # fmt: skip
    assert code == 0, err
    assert result is not None and set(result["deleted"]) == expected
    assert sorted(p.name for p in dest.iterdir()) == sorted(taken)  # dry run deleted nothing

    code, result, _ = rankops(
        "prune-backups", "--at", str(dest), "--model-name", "ranker", "--time-zone", "Europe/Berlin",
        "--daily", "2", "--weekly", "2", "--monthly", "1", "--protect", "1.1.0",
    )  # fmt: skip
    assert code == 0 and result is not None and set(result["deleted"]) == expected
    assert sorted(p.name for p in dest.iterdir()) == sorted(set(taken) - expected)
    assert rankops("verify-backups", "--at", str(dest))[0] == 0
    code, _, err = rankops("prune-backups", "--at", str(dest), "--time-zone", "Mars/Base")
    assert code == 2 and "unknown time zone" in err


def test_evaluate_records_a_dated_result_beside_the_artifact(model: Path) -> None:
    manifest = (model / "manifest.json").read_bytes()
    code, result, err = rankops(
        "evaluate", "--model", str(model), "--data", f"file://{BUNDLED}", "--split", "test", "--record"
    )
    assert code == 0, err
    assert result is not None and result["split"] == "test"
    (recorded,) = (model / "evaluations").iterdir()
    assert recorded.name.endswith("-test.json") and result["recorded"].endswith(recorded.name)
    stored = json.loads(recorded.read_text())
    assert stored["model"] == result["model"] and stored["evaluatedAt"].endswith("Z")
    assert (model / "manifest.json").read_bytes() == manifest
    from rankops.serving.artifact import verify_artifact

    assert verify_artifact(str(model)) == []
    # The full test split, as the manifest measured it at training time.
    assert result["model"]["ndcg@3"] == pytest.approx(
        json.loads(manifest)["metrics"]["test"]["model"]["ndcg@3"], abs=1e-6
    )
    code, _, _ = rankops("evaluate", "--model", str(model), "--data", str(BUNDLED), "--min-ndcg", "0.99")
    assert code == 1


def test_evaluate_reads_data_from_another_fsspec_filesystem(model: Path) -> None:
    import fsspec

    from rankops.cli.main import main

    mem = fsspec.filesystem("memory")
    for path in BUNDLED.rglob("*"):
        if path.is_file():
            mem.pipe(f"/beir/{path.relative_to(BUNDLED).as_posix()}", path.read_bytes())
    assert main(["evaluate", "--model", str(model), "--data", "memory://beir", "--split", "dev"]) == 0
