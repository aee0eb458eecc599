"""Reading datasets in the BEIR layout.

    DIR/corpus.jsonl        {"_id", "title", "text", "metadata": {"source", "source_name", "domain",
                            "region", "granularity"}}
    DIR/queries.jsonl       {"_id", "text"}
    DIR/qrels/{split}.tsv   header "query-id<TAB>corpus-id<TAB>score", graded 0-4

Metadata fields may also sit at the top level of a corpus record (both forms are read).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

SPLITS = ("train", "dev", "test")
QRELS_HEADER = "query-id\tcorpus-id\tscore"
# ``source`` is a publisher slug (``data_gov_sg``); ``source_name`` its display name
META_FIELDS = ("source", "source_name", "domain", "region", "granularity")


class DatasetError(ValueError):
    """The dataset directory is missing files or holds malformed records."""


@dataclass(frozen=True)
class Document:
    id: str
    title: str
    text: str
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass
class Dataset:
    root: Path
    corpus: list[Document]
    queries: dict[str, str]
    qrels: dict[str, dict[str, dict[str, int]]]  # split -> query id -> doc id -> grade

    def split(self, name: str) -> dict[str, dict[str, int]]:
        if name not in self.qrels:
            raise DatasetError(
                f"{self.root}: no qrels for split {name!r} (have: {', '.join(self.qrels) or 'none'})"
            )
        return self.qrels[name]

    def split_queries(self, name: str) -> list[tuple[str, str, dict[str, int]]]:
        """(query id, text, judgments) for queries of a split that have text, sorted by id."""
        qrels = self.split(name)
        return [(qid, self.queries[qid], qrels[qid]) for qid in sorted(qrels) if qid in self.queries]


def _read_jsonl(path: Path) -> list[dict[str, object]]:
    if not path.is_file():
        raise DatasetError(f"missing file: {path}")
    out = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{path}:{n}: invalid JSON: {exc.msg}") from None
            if not isinstance(rec, dict) or "_id" not in rec:
                raise DatasetError(f"{path}:{n}: record without _id")
            out.append(rec)
    return out


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            parts = line.split("\t")
            if n == 1 and parts[0] == "query-id":
                continue
            if len(parts) != 3:
                raise DatasetError(f"{path}:{n}: expected 3 tab-separated fields, got {line!r}")
            try:
                grade = int(float(parts[2]))
            except ValueError:
                raise DatasetError(f"{path}:{n}: score is not a number: {parts[2]!r}") from None
            qrels.setdefault(parts[0], {})[parts[1]] = grade
    return qrels


def load_dataset(root: str | Path) -> Dataset:
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"dataset directory not found: {root}")
    corpus = []
    seen: set[str] = set()
    for rec in _read_jsonl(root / "corpus.jsonl"):
        meta_raw = rec.get("metadata") if isinstance(rec.get("metadata"), dict) else {}
        assert isinstance(meta_raw, dict)
        meta = {k: str(meta_raw.get(k, rec.get(k, "")) or "") for k in META_FIELDS}
        doc_id = str(rec["_id"])
        if doc_id in seen:
            raise DatasetError(f"{root / 'corpus.jsonl'}: duplicate _id {doc_id!r}")
        seen.add(doc_id)
        corpus.append(Document(doc_id, str(rec.get("title", "")), str(rec.get("text", "")), meta))
    if not corpus:
        raise DatasetError(f"{root / 'corpus.jsonl'}: empty corpus")
    queries = {str(r["_id"]): str(r.get("text", "")) for r in _read_jsonl(root / "queries.jsonl")}
    qrels = {}
    for split in SPLITS:
        path = root / "qrels" / f"{split}.tsv"
        if path.is_file():
            qrels[split] = read_qrels(path)
    if not qrels:
        raise DatasetError(f"{root / 'qrels'}: no qrels/{{train,dev,test}}.tsv found")
    return Dataset(root, corpus, queries, qrels)


def dataset_files(root: str | Path) -> list[Path]:
    root = Path(root)
    files = [root / "corpus.jsonl", root / "queries.jsonl"]
    files += [root / "qrels" / f"{s}.tsv" for s in SPLITS if (root / "qrels" / f"{s}.tsv").is_file()]
    return files


def dataset_digest(root: str | Path) -> tuple[str, dict[str, str]]:
    """sha256 over the dataset files (relative path, NUL, file sha256, newline; sorted by path),
    plus the per-file digests."""
    root = Path(root)
    per_file = {}
    for path in dataset_files(root):
        per_file[path.relative_to(root).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    h = hashlib.sha256()
    for rel in sorted(per_file):
        h.update(f"{rel}\0{per_file[rel]}\n".encode())
    return h.hexdigest(), per_file
