"""Import the runbook's query-to-source mapping files into a BEIR dataset.

Format, one mapping per line::

    # comment lines start with '#'; a ' # ...' tail is a comment too
    housing prices in singapore → data.gov.sg (0.85)
    bus arrival times -> LTA DataMall (1.0)

Rules:

* ``QUERY → SOURCE (SCORE)``; ``->`` works as well as ``→``. SCORE is a number in [0, 1].
* The grade is ``round(4 * SCORE)`` with halves rounded up: 0.85 -> 3, 0.875 -> 4, 0.1 -> 0.
* SOURCE is matched case-insensitively (ignoring spaces, dots and dashes) against the
  catalogue's ``source`` values and the known aliases ("lta datamall", "world bank", ...).
* The grade goes to the ``per_source`` items of that source that BM25 (title + description)
  ranks highest for the query (ties by catalogue order). Several lines for the same query
  add judgments; when two lines judge the same item, the higher grade wins.
* A query whose text is already in ``queries.jsonl`` keeps its id; a new one gets
  ``map-<first 10 hex of sha1(text)>``. A query already judged in another split is an error
  (it would leak between splits).
* Malformed lines are reported with line number and content, and no judgment is written.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from rankops.serving.bm25 import BM25Baseline
from rankops.serving.dataset import QRELS_HEADER, SPLITS, DatasetError, load_dataset, read_qrels
from rankops.serving.features import SOURCE_ALIASES

LINE_RE = re.compile(r"^(?P<query>.+?)\s*(?:→|->)\s*(?P<source>.+?)\s*\(\s*(?P<score>[-+]?\d*\.?\d+)\s*\)$")


class MappingError(ValueError):
    """Malformed mapping lines; the message lists them with line numbers."""


@dataclass(frozen=True)
class MappingLine:
    line_no: int
    query: str
    source: str
    score: float

    @property
    def grade(self) -> int:
        return int(4 * self.score + 0.5)


@dataclass(frozen=True)
class ImportSummary:
    lines: int
    new_queries: int
    qrels: int


def _norm(name: str) -> str:
    return re.sub(r"[\s.\-_]+", "", name.lower())


def parse_mapping(text: str, source_name: str = "<mapping>") -> list[MappingLine]:
    out: list[MappingLine] = []
    errors: list[str] = []
    # lines end at "\n" only: a query may hold U+2028, NEL or a form feed (str.splitlines would cut it)
    for n, raw in enumerate(text.removesuffix("\n").split("\n"), 1):
        raw = raw.removesuffix("\r")
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = re.sub(r"\s+#.*$", "", line).strip()
        m = LINE_RE.match(line)
        if m is None:
            errors.append(f"{source_name}:{n}: expected 'QUERY → SOURCE (SCORE)', got {raw.strip()!r}")
            continue
        score = float(m.group("score"))
        if not 0.0 <= score <= 1.0:
            errors.append(f"{source_name}:{n}: score {m.group('score')} is outside [0, 1] in {raw.strip()!r}")
            continue
        query = " ".join(m.group("query").split())
        out.append(MappingLine(n, query, m.group("source").strip(), score))
    if errors:
        more = f" (and {len(errors) - 10} more)" if len(errors) > 10 else ""
        raise MappingError("; ".join(errors[:10]) + more)
    return out


def import_mapping_file(
    path: str | Path, data: str | Path, *, split: str = "train", per_source: int = 3
) -> ImportSummary:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"mapping file not found: {path}")
    return import_mapping(
        parse_mapping(path.read_text(encoding="utf-8-sig"), str(path)),
        data,
        split=split,
        per_source=per_source,
        source_name=str(path),
    )


def import_mapping(
    lines: list[MappingLine],
    data: str | Path,
    *,
    split: str = "train",
    per_source: int = 3,
    source_name: str = "<mapping>",
) -> ImportSummary:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}")
    root = Path(data)
    if not (root / "corpus.jsonl").is_file():
        raise DatasetError(f"{root}: no corpus.jsonl (import-mapping needs the catalogue)")
    queries_path = root / "queries.jsonl"
    if not queries_path.exists():
        queries_path.write_text("", encoding="utf-8")
    (root / "qrels").mkdir(exist_ok=True)
    qrels_path = root / "qrels" / f"{split}.tsv"
    if not qrels_path.exists():
        qrels_path.write_text(QRELS_HEADER + "\n", encoding="utf-8")
    ds = load_dataset(root)

    by_source: dict[str, list[int]] = {}
    canonical: dict[str, str] = {}
    for i, doc in enumerate(ds.corpus):
        src = doc.metadata.get("source", "")
        by_source.setdefault(src, []).append(i)
        canonical[_norm(src)] = src
        if doc.metadata.get("source_name"):
            canonical.setdefault(_norm(doc.metadata["source_name"]), src)
    for src, aliases in SOURCE_ALIASES.items():
        if src in by_source:
            for alias in aliases:
                canonical.setdefault(_norm(alias), src)

    text_to_id = {text: qid for qid, text in ds.queries.items()}
    other_splits = {s: set(q) for s, q in ds.qrels.items() if s != split}
    bm25 = BM25Baseline([d.id for d in ds.corpus], [d.title for d in ds.corpus], [d.text for d in ds.corpus])
    errors: list[str] = []
    new_queries: dict[str, str] = {}
    judged: dict[str, dict[str, int]] = {}
    for ml in lines:
        matched = canonical.get(_norm(ml.source))
        if matched is None:
            errors.append(
                f"{source_name}:{ml.line_no}: unknown source {ml.source!r} "
                f"(catalogue sources: {', '.join(sorted(by_source))})"
            )
            continue
        qid = text_to_id.get(ml.query) or new_queries.get(ml.query)
        if qid is None:
            qid = "map-" + hashlib.sha1(ml.query.encode("utf-8")).hexdigest()[:10]
            new_queries[ml.query] = qid
        leaked = [s for s, ids in other_splits.items() if qid in ids]
        if leaked:
            errors.append(
                f"{source_name}:{ml.line_no}: query {ml.query!r} is already judged in split {leaked[0]!r}"
            )
            continue
        scores = bm25.scores(ml.query)
        idx = sorted(by_source[matched], key=lambda i: (-scores[i], i))[:per_source]
        target = judged.setdefault(qid, {})
        for i in idx:
            doc_id = ds.corpus[i].id
            target[doc_id] = max(target.get(doc_id, 0), ml.grade)
    if errors:
        more = f" (and {len(errors) - 10} more)" if len(errors) > 10 else ""
        raise MappingError("; ".join(errors[:10]) + more)

    with queries_path.open("a", encoding="utf-8") as f:
        for text, qid in new_queries.items():
            f.write(json.dumps({"_id": qid, "text": text}, ensure_ascii=False) + "\n")
    existing = read_qrels(qrels_path)
    for qid, docs in judged.items():
        existing.setdefault(qid, {}).update(docs)
    with qrels_path.open("w", encoding="utf-8") as f:
        f.write(QRELS_HEADER + "\n")
        for qid, docs in existing.items():
            for doc_id, grade in docs.items():
                f.write(f"{qid}\t{doc_id}\t{grade}\n")
    return ImportSummary(len(lines), len(new_queries), sum(len(d) for d in judged.values()))
