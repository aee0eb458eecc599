"""The bundled dataset, its generator, the BEIR loader and the mapping importer."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from rankops.cli.main import main
from rankops.serving.dataset import DatasetError, dataset_digest, load_dataset
from rankops.serving.mapping_import import MappingError, parse_mapping

from ._model_support import BUNDLED, generator, tiny_dataset


def test_bundled_dataset_shape() -> None:
    ds = load_dataset(BUNDLED)
    assert len(ds.corpus) >= 1000
    assert len(ds.queries) >= 300
    assert set(ds.qrels) == {"train", "dev", "test"}
    for doc in ds.corpus[:50]:
        assert doc.title and doc.text
        assert all(doc.metadata[k] for k in ("source", "domain", "region"))
    assert {"data_gov_sg", "singstat", "kaggle", "zenodo", "world_bank", "lta_datamall", "onemap"} <= {
        d.metadata["source"] for d in ds.corpus
    }
    names = {d.metadata["source"]: d.metadata["source_name"] for d in ds.corpus}
    assert names["data_gov_sg"] == "data.gov.sg" and names["world_bank"] == "World Bank"
    assert {
        "transport",
        "housing",
        "health",
        "economy",
        "environment",
        "education",
        "population",
        "psychology",
        "machine_learning",
        "climate",
    } <= {d.metadata["domain"] for d in ds.corpus}
    assert {"Singapore", "ASEAN", "Global"} <= {d.metadata["region"] for d in ds.corpus}
    split_ids = [set(q) for q in ds.qrels.values()]
    assert sum(len(s) for s in split_ids) == len(set().union(*split_ids))  # disjoint by query
    corpus_ids = {d.id for d in ds.corpus}
    for split, qrels in ds.qrels.items():
        for qid, judg in qrels.items():
            assert qid in ds.queries
            assert set(judg) <= corpus_ids
            grades = Counter(judg.values())
            assert set(grades) <= {0, 1, 2, 3, 4}
            assert grades[4] >= 1 and grades[0] >= 1 and len(judg) >= 5, (split, qid)
    for split in ("train", "dev", "test"):
        assert (BUNDLED / "qrels" / f"{split}.tsv").read_text().splitlines()[
            0
        ] == "query-id\tcorpus-id\tscore"
    size = sum(p.stat().st_size for p in BUNDLED.rglob("*") if p.is_file())
    assert size < 4_000_000


def test_bundle_is_what_the_seeded_generator_writes(tmp_path: Path) -> None:
    generator().main(["--out", str(tmp_path / "d")])
    assert dataset_digest(tmp_path / "d")[0] == dataset_digest(BUNDLED)[0]


def test_generator_is_seeded(tmp_path: Path) -> None:
    gen = generator()
    gen.write(tmp_path / "a", seed=1, n_items=100, n_queries=40)
    gen.write(tmp_path / "b", seed=1, n_items=100, n_queries=40)
    gen.write(tmp_path / "c", seed=2, n_items=100, n_queries=40)
    assert dataset_digest(tmp_path / "a")[0] == dataset_digest(tmp_path / "b")[0]
    assert dataset_digest(tmp_path / "a")[0] != dataset_digest(tmp_path / "c")[0]


def test_relevance_follows_the_generative_structure() -> None:
    gen = generator()
    item = gen.Item("x", "hdb_resale", "housing", "Singapore", "data.gov.sg", "monthly", "t", "d")
    intent = gen.Intent
    assert gen.grade(intent("hdb_resale", "Singapore", None, None), item) == 4
    assert gen.grade(intent("hdb_resale", None, None, None), item) == 4
    assert gen.grade(intent("hdb_resale", "Singapore", "Kaggle", None), item) == 3
    assert gen.grade(intent("hdb_resale", "Singapore", None, "annual"), item) == 3
    assert gen.grade(intent("rental", "Singapore", None, None), item) == 1  # same domain
    assert gen.grade(intent("gdp", "Singapore", None, None), item) == 0  # other domain
    glob = gen.Item("y", "hdb_resale", "housing", "Global", "Kaggle", "monthly", "t", "d")
    assert gen.grade(intent("hdb_resale", "Singapore", None, None), glob) == 3  # Global contains Singapore
    assert gen.grade(intent("hdb_resale", "Malaysia", None, None), item) == 2  # disjoint region


def test_queries_avoid_title_words_often() -> None:
    # the paraphrases are what makes learning worthwhile: most queries share no content word
    # with the titles of their grade-4 items
    ds = load_dataset(BUNDLED)
    titles = {d.id: set(d.title.lower().split()) for d in ds.corpus}
    stop = {"in", "of", "the", "and", "by", "on", "for", "a", "to", "data"}
    disjoint = 0
    qrels = ds.qrels["train"]
    for qid, judg in qrels.items():
        words = set(ds.queries[qid].lower().split()) - stop
        best = [d for d, g in judg.items() if g == 4]
        if all(not (words & titles[d]) for d in best):
            disjoint += 1
    assert disjoint / len(qrels) > 0.3


def test_loader_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not found"):
        load_dataset(tmp_path / "none")
    (tmp_path / "corpus.jsonl").write_text('{"_id": "a", "title": "t", "text": "x"}\nnot json\n')
    with pytest.raises(DatasetError, match=r"corpus.jsonl:2"):
        load_dataset(tmp_path)


# ---------------------------------------------------------------------------- mapping import


def test_parse_mapping_formats() -> None:
    text = (
        "# runbook mappings\n\nhousing prices in singapore → data.gov.sg (0.85)\n"
        "bus arrivals -> LTA DataMall (1)  # exact\n  covid cases ->  WHO (0.1)\n"
    )
    lines = parse_mapping(text)
    assert [(m.query, m.source, m.grade) for m in lines] == [
        ("housing prices in singapore", "data.gov.sg", 3),
        ("bus arrivals", "LTA DataMall", 4),
        ("covid cases", "WHO", 0),
    ]
    assert [m.line_no for m in lines] == [3, 4, 5]
    assert parse_mapping("q -> s (0.875)")[0].grade == 4  # halves round up
    assert parse_mapping("q -> s (0.5)")[0].grade == 2


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("housing prices data.gov.sg (0.85)", "expected 'QUERY → SOURCE (SCORE)'"),
        ("housing prices → data.gov.sg", "expected"),
        ("housing prices → data.gov.sg (high)", "expected"),
        ("housing prices → data.gov.sg (1.5)", "outside [0, 1]"),
    ],
)
def test_parse_mapping_errors_name_line_and_content(line: str, needle: str) -> None:
    with pytest.raises(MappingError) as exc:
        parse_mapping(f"# header\nok → Kaggle (0.5)\n{line}\n", "m.txt")
    assert "m.txt:3" in str(exc.value) and needle in str(exc.value) and line in str(exc.value)


def _copy_tiny(tmp_path: Path) -> Path:
    import shutil

    data = tmp_path / "d"
    shutil.copytree(tiny_dataset(), data)
    return data


def test_import_mapping_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _copy_tiny(tmp_path)
    before = load_dataset(data)
    mapping = tmp_path / "map.txt"
    mapping.write_text(
        "# from the runbook\nhousing prices in singapore → data.gov.sg (0.85)\n"
        "housing prices in singapore -> kaggle (0.3)\nbus ridership → lta datamall (1.0)\n"
    )
    rc = main(["import-mapping", str(mapping), "--data", str(data), "--split", "train", "--per-source", "2"])
    assert rc == 0, capsys.readouterr().err
    after = load_dataset(data)
    new = {q: t for q, t in after.queries.items() if q not in before.queries}
    assert sorted(new.values()) == ["bus ridership", "housing prices in singapore"]
    by_text = {t: q for q, t in new.items()}
    judg = after.qrels["train"][by_text["housing prices in singapore"]]
    sources = {d.id: d.metadata["source"] for d in after.corpus}
    assert sorted(judg.values()) == [1, 1, 3, 3]
    assert {sources[d] for d, g in judg.items() if g == 3} == {"data_gov_sg"}
    assert {sources[d] for d in after.qrels["train"][by_text["bus ridership"]]} == {"lta_datamall"}
    assert len(after.qrels["train"]) == len(before.qrels["train"]) + 2
    # importing again is idempotent: same ids, no duplicate queries
    assert main(["import-mapping", str(mapping), "--data", str(data)]) == 0
    assert len(load_dataset(data).queries) == len(after.queries)
    lines = (data / "queries.jsonl").read_text().splitlines()
    assert all(json.loads(line)["_id"] for line in lines)


def test_import_mapping_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _copy_tiny(tmp_path)
    digest = dataset_digest(data)[0]
    bad = tmp_path / "bad.txt"
    bad.write_text("fine → Kaggle (0.5)\nthis line has no arrow (0.5)\n")
    assert main(["import-mapping", str(bad), "--data", str(data)]) == 2
    err = capsys.readouterr().err
    assert "bad.txt:2" in err and "this line has no arrow" in err
    bad.write_text("fine → Nobody Publishes This (0.5)\n")
    assert main(["import-mapping", str(bad), "--data", str(data)]) == 2
    assert "unknown source 'Nobody Publishes This'" in capsys.readouterr().err
    assert dataset_digest(data)[0] == digest  # nothing written
    assert main(["import-mapping", str(tmp_path / "missing.txt"), "--data", str(data)]) == 2
