"""Any text round-trips: catalogue, queries and mapping files train, write, load and serve.

JSON strings may hold U+2028/U+2029, NEL (U+0085), form feed and other characters that
``str.splitlines`` treats as line ends; records must only ever be split at ``\\n``.
"""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rankops.serving.artifact import _jsonl, _read_jsonl, load_artifact
from rankops.serving.dataset import load_dataset
from rankops.serving.mapping_import import parse_mapping
from rankops.serving.training_run import train_command

TRICKY = (
    "\u2028\u2029\u0085\x0c\x0b\x1c\x1d\x1e\r e\u0301 \U0001f600 "
    "\u05e9\u05dc\u05d5\u05dd \u0627\u0644\u0633\u0644\u0627\u0645 \u200f"
)
texts = st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from(list(TRICKY)), max_size=40)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.dictionaries(st.sampled_from(["id", "title", "description"]), texts), max_size=5))
def test_jsonl_records_split_only_at_newline(records: list[dict[str, str]]) -> None:
    assert _read_jsonl(_jsonl(records)) == [r for r in records]


def _write_dataset(root: Path, titles: list[str], descriptions: list[str], queries: list[str]) -> None:
    (root / "qrels").mkdir(parents=True)
    with (root / "corpus.jsonl").open("w", encoding="utf-8", newline="\n") as f:
        for i, (t, d) in enumerate(zip(titles, descriptions, strict=True)):
            meta = {
                "source": f"src\u2028{i % 2}",
                "source_name": f"Publisher\u0085{i % 2}",
                "region": "R\u2029",
            }
            f.write(
                json.dumps(
                    {"_id": f"d{i}\u2028x", "title": t, "text": d, "metadata": meta}, ensure_ascii=False
                )
                + "\n"
            )
    with (root / "queries.jsonl").open("w", encoding="utf-8", newline="\n") as f:
        for i, q in enumerate(queries):
            f.write(json.dumps({"_id": f"q{i}", "text": q}, ensure_ascii=False) + "\n")
    n = len(titles)
    for split, qids in (("train", range(0, len(queries), 2)), ("test", range(1, len(queries), 2))):
        with (root / "qrels" / f"{split}.tsv").open("w", encoding="utf-8", newline="\n") as f:
            f.write("query-id\tcorpus-id\tscore\n")
            for q in qids:
                f.write(f"q{q}\td{q % n}\u2028x\t{1 + q % 4}\nq{q}\td{(q + 1) % n}\u2028x\t0\n")


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    titles=st.lists(texts, min_size=3, max_size=3),
    descriptions=st.lists(texts, min_size=3, max_size=3),
    queries=st.lists(texts, min_size=4, max_size=4),
)
def test_any_text_trains_writes_loads_and_serves(
    titles: list[str], descriptions: list[str], queries: list[str]
) -> None:
    titles = [t + TRICKY for t in titles]  # every example holds the hard cases
    with tempfile.TemporaryDirectory() as tmp:
        data, out = Path(tmp) / "data", Path(tmp) / "model"
        _write_dataset(data, titles, descriptions, queries)
        ds = load_dataset(data)
        assert [d.title for d in ds.corpus] == titles
        assert [ds.queries[f"q{i}"] for i in range(len(queries))] == queries
        train_command(str(data), str(out), "0.0.1", epochs=1, seed=1, stream=io.StringIO())
        art = load_artifact(str(out))
        assert [c.title for c in art.catalog] == titles
        assert [c.description for c in art.catalog] == descriptions
        assert [c.source_name for c in art.catalog] == [f"Publisher\u0085{i % 2}" for i in range(3)]
        assert {g.text for g in art.golden} == {queries[1], queries[3]}
        for q in [*queries, TRICKY]:
            ranked = art.rank(q, 3)
            assert len(ranked) == 3 and all(0.0 <= r.relevance <= 1.0 for r in ranked)


@settings(max_examples=200, deadline=None)
@given(
    texts.filter(lambda t: "\n" not in t and "#" not in t and "→" not in t and "->" not in t and t.strip())
)
def test_mapping_queries_keep_any_text(query: str) -> None:
    lines = parse_mapping(f"{query} → kaggle (0.5)\nother → zenodo (1)\n")
    assert len(lines) == 2 and lines[0].source == "kaggle" and lines[1].query == "other"
    assert lines[0].query == " ".join(query.split())  # the importer collapses runs of whitespace
