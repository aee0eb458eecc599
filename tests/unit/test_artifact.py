"""Model artifacts: layout, manifest, integrity checks and the ranking API the service uses."""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import pytest

from rankops.serving.artifact import (
    ArtifactExistsError,
    ArtifactIntegrityError,
    CatalogItem,
    RankedItem,
    load_artifact,
    verify_artifact,
    write_artifact,
)
from rankops.serving.dataset import dataset_digest

from ._model_support import tiny_artifact, tiny_dataset


@pytest.fixture(scope="module")
def art():  # type: ignore[no-untyped-def]
    return load_artifact(str(tiny_artifact()))


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    dst = tmp_path / "model"
    shutil.copytree(tiny_artifact(), dst)
    return dst


def test_layout_and_manifest() -> None:
    root = tiny_artifact()
    names = {p.name for p in root.iterdir()}
    assert {
        "model.pt",
        "model_config.json",
        "catalog.jsonl",
        "golden.jsonl",
        "reference_stats.json",
        "manifest.json",
    } <= names
    m = json.loads((root / "manifest.json").read_text())
    assert m["name"] == "dataset-ranker" and m["version"] == "0.1.0" and m["parent_version"] is None
    assert m["created"].endswith("Z") and m["seed"] == 3 and m["torch_version"]
    assert m["training_data"]["digest"] == dataset_digest(tiny_dataset())[0]
    for split in ("dev", "test"):
        for who in ("model", "bm25"):
            assert set(m["metrics"][split][who]) == {"ndcg@3", "ndcg@10", "mrr", "p@3"}
    assert set(m["files"]) == names - {"manifest.json"}
    for name, entry in m["files"].items():
        assert entry["size"] == (root / name).stat().st_size
        assert len(entry["sha256"]) == 64


def test_load_plain_path_and_file_uri(art) -> None:  # type: ignore[no-untyped-def]
    assert verify_artifact(str(tiny_artifact())) == []
    via_uri = load_artifact(tiny_artifact().as_uri())
    assert via_uri.sha256 == art.sha256 and len(art.sha256) == 64
    assert art.version == "0.1.0"
    assert len(art.catalog) == 240 and isinstance(art.catalog[0], CatalogItem)
    assert art.golden and all(g.judgments for g in art.golden)


def test_rank_api(art) -> None:  # type: ignore[no-untyped-def]
    ranked = art.rank("monthly bus ridership in singapore", 5)
    assert len(ranked) == 5 and all(isinstance(r, RankedItem) for r in ranked)
    scores = [r.score for r in ranked]
    assert scores == sorted(scores, reverse=True)
    assert len({r.item.id for r in ranked}) == 5
    assert len(art.rank("anything", 10_000)) == len(art.catalog)
    assert art.rank("anything", 0) == []
    assert art.rank("", 3) and art.rank("!!!", 3)  # no tokens still ranks
    queries = ["hdb resale prices", "dengue cases sg", "gdp growth worldwide"]
    batched = art.rank_many(queries, 4)
    for q, row in zip(queries, batched, strict=True):
        single = art.rank(q, 4)
        assert [r.item.id for r in row] == [r.item.id for r in single]
        assert [r.score for r in row] == pytest.approx([r.score for r in single], abs=1e-5)


def test_query_understanding(art) -> None:  # type: ignore[no-untyped-def]
    for q in (
        "rents in singapore",
        "sg rents",
        "s'pore rents",
        "S\u2019pore rents",
        "SINGAPORE's rents",
        "rents (sg)",
    ):
        assert art.detect_region(q) == "Singapore", q
    assert art.detect_region("rents in asean countries") == "ASEAN"
    assert art.detect_region("gdp from world bank") is None  # a publisher, not a region
    assert art.detect_region("bus ridership") is None
    assert art.detect_region("sgd exchange rates") is None
    domain, conf = art.predict_domain("how many people take the bus")
    assert domain in art.config.domains and 0 < conf <= 1


def test_rank_is_thread_safe_and_fast(art) -> None:  # type: ignore[no-untyped-def]
    queries = [g.text for g in art.golden]
    expected = {q: [r.item.id for r in art.rank(q, 5)] for q in queries}
    errors: list[str] = []

    def worker() -> None:
        for q in queries * 3:
            got = [r.item.id for r in art.rank(q, 5)]
            if got != expected[q]:
                errors.append(q)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    start = time.perf_counter()
    for q in queries:
        art.rank(q, 10)
    assert (time.perf_counter() - start) / len(queries) < 0.02  # generous: ~1 ms on an idle core


def test_tampered_file_is_detected(copy: Path) -> None:
    with (copy / "catalog.jsonl").open("a") as f:
        f.write("\n")
    problems = verify_artifact(str(copy))
    assert len(problems) == 1 and problems[0].startswith("catalog.jsonl: ")
    with pytest.raises(ArtifactIntegrityError, match=r"catalog\.jsonl"):
        load_artifact(str(copy))
    load_artifact(str(copy), verify=False)  # still loadable when asked not to verify


def test_missing_files_are_detected(copy: Path) -> None:
    (copy / "model.pt").unlink()
    assert verify_artifact(str(copy)) == ["model.pt: missing"]
    with pytest.raises(ArtifactIntegrityError, match=r"model\.pt: missing"):
        load_artifact(str(copy))
    (copy / "manifest.json").unlink()
    assert verify_artifact(str(copy)) == ["manifest.json: missing"]
    (copy / "manifest.json").write_text("{not json")
    assert verify_artifact(str(copy))[0].startswith("manifest.json: not valid JSON")
    assert verify_artifact(str(copy / "nowhere")) == ["manifest.json: missing"]


def test_artifacts_are_immutable(art, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    kwargs = dict(
        name="n",
        version="9.9.9",
        net=art.ranker.net,
        catalog=art.catalog,
        golden=art.golden,
        reference=art.reference,
        item_embeddings=art.item_embeddings,
    )
    out = tmp_path / "a"
    m = write_artifact(str(out), **kwargs)  # type: ignore[arg-type]
    assert verify_artifact(str(out)) == [] and m["version"] == "9.9.9"
    with pytest.raises(ArtifactExistsError):
        write_artifact(str(out), **kwargs)  # type: ignore[arg-type]
    write_artifact(f"file://{out}", overwrite=True, **kwargs)  # type: ignore[arg-type]
    reloaded = load_artifact(str(out))
    assert [r.item.id for r in reloaded.rank("rainfall", 3)] == [r.item.id for r in art.rank("rainfall", 3)]


def test_request_path_matches_the_torch_model(art) -> None:  # type: ignore[no-untyped-def]
    # rank() scores with a numpy copy of the network (no torch dispatch on the request path);
    # it must agree with the torch forward used in training and batched evaluation
    import numpy as np

    queries = [g.text for g in art.golden] + ["", "zzz", "rents in sg via datamall per month"]
    torch_scores = art.ranker.scores(queries)
    for q, row in zip(queries, torch_scores, strict=True):
        fast, probs = art.scorer.scores(q)
        np.testing.assert_allclose(fast, row, atol=1e-4)
        assert abs(float(probs.sum()) - 1) < 1e-5
    batched = art.rank_many(queries, 5)  # >= 8 queries: the batched torch path
    for q, row in zip(queries, batched, strict=True):
        assert [r.score for r in row] == pytest.approx([r.score for r in art.rank(q, 5)], abs=1e-4)


def test_an_old_format_artifact_is_refused_with_a_retrain_message(copy: Path) -> None:
    # format 1 (the hashed two-tower without match signals) cannot be served by this version
    config = json.loads((copy / "model_config.json").read_text())
    config.update(format=1, architecture="hashed-two-tower+match-mlp")
    (copy / "model_config.json").write_text(json.dumps(config))
    with pytest.raises(ArtifactIntegrityError, match=r"model format 1 .* retrain it with `rankops train`"):
        load_artifact(str(copy), verify=False)
