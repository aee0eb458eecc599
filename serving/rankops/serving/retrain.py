"""``rankops retrain``: a candidate trained on the base dataset plus production feedback, gated.

Training set: the base dataset's train split plus one training query per distinct feedback
query text collected in the window ``(parent created, until]`` of the durable feedback log.
A feedback record is self-contained (the query text and the ranking as served, written by the
service when the feedback was accepted), so no join with the served records is needed to know
what was judged; the grades are those the service already derived by its stated rule
(``rankops.serving.feedback``: judgments as given, click 1 / shown not clicked 0, stars - 1,
thumbs up 2 / down 0).

Rule from feedback to graded qrels: queries are matched by normalised text (case-folded,
whitespace collapsed); the grade of a (query, item) pair is the MEAN of the grades all its
feedback records gave, rounded half up, so one stray click or rating does not outweigh the
rest. Items not in the parent's catalogue are dropped.

No leakage: feedback whose normalised query text equals a dev or test query of the base
dataset is dropped (counted in the manifest), so the held-out split the gate judges on never
enters training, and dev still picks the epoch honestly.

The candidate is trained by ``rankops train``'s own function on a materialised copy of the
combined dataset, then judged against the parent by ``rankops.serving.gate``; its
``manifest.json`` gains a ``retrain`` section and ``training_data`` names both sources.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import fsspec
import orjson

from rankops.serving.artifact import MANIFEST, check_writable, load_artifact
from rankops.serving.dataset import QRELS_HEADER, Dataset, dataset_digest, load_dataset
from rankops.serving.feedback_log import FeedbackRecord, log_exists, read_feedback
from rankops.serving.gate import GateConfig, GateResult, evaluate_gate
from rankops.serving.train import DEFAULT_EPOCHS, DEFAULT_SEED
from rankops.serving.training_run import train_command

HELDOUT_SPLITS = ("dev", "test")
GATE_SPLIT = "test"
FEEDBACK_QUERY_PREFIX = "fb-"


class RetrainInputError(ValueError):
    """Bad input to ``rankops retrain`` (exit status 2)."""


def normalize_query(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip()).casefold()


@dataclass
class FeedbackTrainingSet:
    """Graded qrels from feedback, keyed by normalised query text, and what was left out."""

    qrels: dict[str, dict[str, int]]
    texts: dict[str, str]  # normalised -> the text as first seen
    records: int
    used: int
    dropped_heldout: int
    dropped_unknown_items: int
    digest: str
    by_version: dict[str, int]  # records used, by the model version that served them


def feedback_training_set(
    records: Iterable[FeedbackRecord], heldout_texts: Iterable[str], catalog_ids: Iterable[str]
) -> FeedbackTrainingSet:
    """Apply the module's rule: mean grade (rounded half up) per (query, item); no held-out query."""
    heldout = {normalize_query(t) for t in heldout_texts}
    known = set(catalog_ids)
    sums: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    texts: dict[str, str] = {}
    digest = hashlib.sha256()
    by_version: dict[str, int] = {}
    n = used = dropped_heldout = dropped_items = 0
    for rec in sorted(records, key=lambda r: (r.time, r.request_id)):
        n += 1
        key = normalize_query(rec.query)
        if not key or key in heldout:
            dropped_heldout += int(bool(key))
            continue
        grades = {i: g for i, g in rec.grades.items() if i in known}
        dropped_items += len(rec.grades) - len(grades)
        if not grades:
            continue
        used += 1
        by_version[rec.version] = by_version.get(rec.version, 0) + 1
        texts.setdefault(key, rec.query.strip())
        for item, grade in grades.items():
            sums[key][item].append(grade)
        line = {"request_id": rec.request_id, "time": rec.time, "query": rec.query, "grades": rec.grades}
        digest.update(orjson.dumps(line, option=orjson.OPT_SORT_KEYS) + b"\n")
    qrels = {
        key: {item: int(sum(gs) / len(gs) + 0.5) for item, gs in sorted(items.items())}
        for key, items in sorted(sums.items())
    }
    return FeedbackTrainingSet(
        qrels,
        texts,
        n,
        used,
        dropped_heldout,
        dropped_items,
        digest.hexdigest(),
        dict(sorted(by_version.items())),
    )


def materialize(base: Dataset, feedback: FeedbackTrainingSet, out: Path) -> int:
    """Write base + feedback as a BEIR directory at ``out``; dev/test are the base's, unchanged.

    Returns the number of feedback training queries added."""
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(base.root / "corpus.jsonl", out / "corpus.jsonl")
    queries = dict(base.queries)
    train = {qid: dict(j) for qid, j in base.split("train").items()}
    added = 0
    for key, judgments in feedback.qrels.items():
        if not any(g > 0 for g in judgments.values()):
            continue  # no target for the listwise loss: the trainer would skip it anyway
        qid = FEEDBACK_QUERY_PREFIX + hashlib.sha256(key.encode()).hexdigest()[:16]
        queries[qid] = feedback.texts[key]
        train[qid] = judgments
        added += 1
    with (out / "queries.jsonl").open("w", encoding="utf-8") as f:
        for qid, text in queries.items():
            f.write(json.dumps({"_id": qid, "text": text}, ensure_ascii=False) + "\n")
    for split, qrels in base.qrels.items():
        rows = train if split == "train" else qrels
        with (out / "qrels" / f"{split}.tsv").open("w", encoding="utf-8") as f:
            f.write(QRELS_HEADER + "\n")
            for qid in sorted(rows):
                for doc, grade in sorted(rows[qid].items()):
                    f.write(f"{qid}\t{doc}\t{grade}\n")
    return added


def _parse_created(manifest: dict[str, Any], uri: str) -> float:
    created = manifest.get("created")
    if not isinstance(created, str):
        raise RetrainInputError(f"{uri}: the parent's manifest has no 'created' time")
    try:
        return dt.datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise RetrainInputError(f"{uri}: the parent's 'created' is not an ISO time: {created!r}") from None


def _iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _finish_manifest(uri: str, training_data: dict[str, Any], retrain: dict[str, Any]) -> dict[str, Any]:
    """Add the retrain record to the candidate's manifest (the manifest is not in its own digest table).

    ``training_data`` keeps what the trainer wrote about splits (``golden_split`` is read by the
    golden chore) but names the real sources instead of the temporary combined directory."""
    fs, path = fsspec.core.url_to_fs(uri)
    mpath = f"{path.rstrip('/')}/{MANIFEST}"
    manifest: dict[str, Any] = json.loads(fs.cat_file(mpath))
    manifest["training_data"] = {**manifest.get("training_data", {}), **training_data}
    manifest["retrain"] = retrain
    with fs.open(mpath, "wb") as f:
        f.write((json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode())
    return manifest


def retrain_command(
    model: str,
    data: str,
    feedback_log: str,
    out: str,
    version: str,
    *,
    gate: GateConfig,
    epochs: int = DEFAULT_EPOCHS,
    seed: int = DEFAULT_SEED,
    until: float | None = None,
    force: bool = False,
    stream: TextIO | None = None,
) -> tuple[GateResult, dict[str, Any]]:
    """Train, judge and write the candidate; return the gate's result and the candidate's manifest."""

    def log(msg: str) -> None:
        print(msg, file=stream or sys.stderr, flush=True)

    try:
        exists = log_exists(feedback_log)
    except (ValueError, ImportError) as exc:
        raise RetrainInputError(f"bad --feedback-log URI {feedback_log!r}: {exc}") from exc
    if not exists:
        raise RetrainInputError(f"no feedback log at {feedback_log}")
    check_writable(out, overwrite=force)
    parent = load_artifact(model)
    parent_version = str(parent.manifest.get("version", ""))
    if parent_version == version:
        raise RetrainInputError(f"--version {version} is the parent's version: pick a new one")
    since = _parse_created(parent.manifest, model)
    until = time.time() if until is None else until
    if until <= since:
        raise RetrainInputError(
            f"the feedback window is empty: until {_iso(until)} <= parent created {_iso(since)}"
        )
    base = load_dataset(data)
    heldout = [text for s in HELDOUT_SPLITS if s in base.qrels for _, text, _ in base.split_queries(s)]
    gate_queries = base.split_queries(GATE_SPLIT)  # raises DatasetError without a test split
    if not gate_queries:
        raise RetrainInputError(f"{data}: the {GATE_SPLIT} split has no queries with text to judge on")
    feedback = feedback_training_set(
        read_feedback(feedback_log, since, until), heldout, [c.id for c in parent.catalog]
    )
    if feedback.used == 0:
        raise RetrainInputError(
            f"no usable feedback in {feedback_log} between {_iso(since)} and {_iso(until)} "
            f"({feedback.records} records, {feedback.dropped_heldout} on held-out queries)"
        )
    base_digest, base_files = dataset_digest(data)
    log(
        f"retraining {parent_version} -> {version}: {feedback.records} feedback records since "
        f"{_iso(since)}, {feedback.used} used, {feedback.dropped_heldout} dropped as held-out queries, "
        f"{len(feedback.qrels)} feedback queries"
    )
    with tempfile.TemporaryDirectory(prefix="rankops-retrain-") as tmp:
        added = materialize(base, feedback, Path(tmp))
        combined_digest, combined_files = dataset_digest(tmp)
        train_command(
            tmp,
            out,
            version,
            epochs=epochs,
            seed=seed,
            parent_version=parent_version,
            name=str(parent.manifest.get("name", "dataset-ranker")),
            force=force,
            stream=stream,
        )
    candidate = load_artifact(out)
    result = evaluate_gate(parent, candidate, gate_queries, gate)
    log("gate " + ("PASSED" if result.passed else "FAILED") + ": " + "; ".join(result.reasons))
    manifest = _finish_manifest(
        out,
        {
            "uri": str(Path(data).resolve()),
            "digest": combined_digest,  # of base + feedback as trained on
            "files": combined_files,
            "base": {"uri": str(Path(data).resolve()), "digest": base_digest, "files": base_files},
            "feedback": {"uri": feedback_log, "digest": feedback.digest, "records_used": feedback.used},
        },
        {
            "parent": {"version": parent_version, "uri": model, "manifest_sha256": parent.sha256},
            "feedback_window": {
                "since": _iso(since),
                "until": _iso(until),
                "records": feedback.records,
                "used": feedback.used,
                "dropped_heldout_queries": feedback.dropped_heldout,
                "dropped_unknown_items": feedback.dropped_unknown_items,
                "training_queries_added": added,
                "used_by_served_version": feedback.by_version,
                "grade_rule": "mean of the feedback grades per (normalised query, item), rounded half up",
            },
            "gate": result.to_json(),
            "status": "passed" if result.passed else "failed",
        },
    )
    return result, manifest
