"""The static query encoder distilled from all-MiniLM-L6-v2 (rankops.serving.static_encoder).

The token table is built once per machine from the encoder package (~1 min on 2 busy cores)
and cached next to the catalogue embeddings, so only the first run pays for it."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from rankops.serving.artifact import QUERY_MAP, load_artifact
from rankops.serving.dataset import load_dataset
from rankops.serving.encoder import DIM, cached_embeddings, item_text
from rankops.serving.static_encoder import QueryMap, StaticQueryEncoder, fit_query_map, token_table
from rankops.serving.training_run import train_command

from ._model_support import tiny_artifact, tiny_dataset

# the first run on a machine builds the token table and encodes the fit's texts (minutes on
# 2 busy cores); later runs read both from the embedding cache
pytestmark = pytest.mark.slow


def _fitted() -> tuple[QueryMap, np.ndarray, list[str]]:
    ds = load_dataset(str(tiny_dataset()))
    titles = [d.title for d in ds.corpus]
    descriptions = [d.text for d in ds.corpus]
    items = cached_embeddings([item_text(t, d) for t, d in zip(titles, descriptions, strict=True)])
    fit = fit_query_map(titles, descriptions, items, [q[1] for q in ds.split_queries("train")][:30], seed=1)
    assert fit.train_embeddings.shape == (30, DIM)
    assert np.allclose(np.linalg.norm(fit.train_embeddings, axis=1), 1.0, atol=1e-5)
    return fit.qmap, items, titles


def test_query_map_round_trips_and_refuses_bad_shapes() -> None:
    vocab = token_table().shape[0]
    qmap = QueryMap(np.eye(DIM, dtype=np.float32), np.ones(vocab, np.float32), np.zeros(DIM, np.float32))
    back = QueryMap.from_bytes(qmap.to_bytes())
    assert np.array_equal(back.matrix, qmap.matrix) and np.array_equal(back.idf, qmap.idf)
    buf = io.BytesIO()
    np.savez(buf, matrix=np.eye(3), idf=np.ones(vocab), mean=np.zeros(DIM))
    with pytest.raises(ValueError, match="shapes"):
        QueryMap.from_bytes(buf.getvalue())
    with pytest.raises(ValueError, match="vocabulary"):
        StaticQueryEncoder(QueryMap(qmap.matrix, np.ones(7, np.float32), qmap.mean))


def test_static_vectors_land_near_minilm_and_find_the_item() -> None:
    qmap, items, titles = _fitted()
    enc = StaticQueryEncoder(qmap)
    titles = titles[:40]
    static = enc.encode(titles)
    assert static.shape == (len(titles), DIM)
    assert np.allclose(np.linalg.norm(static, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(static, enc.encode(titles))  # deterministic
    # an item's title, statically encoded, ranks that item (or one with the same title) near
    # the top of the catalogue's real MiniLM embeddings far more often than chance (top 5 of 240)
    found = 0
    for i, vec in enumerate(static):
        top = np.argsort(-(items @ vec))[:5]
        found += int(i in top or any(titles[i] == t for t in (titles[j] for j in top if j < len(titles))))
    assert found >= 0.6 * len(titles), found
    assert float(enc.query("").sum()) == 0.0  # no tokens: the zero vector, not NaN


def test_static_model_writes_its_map_and_serves_it(tmp_path: Path) -> None:
    out = tmp_path / "static-model"
    log = io.StringIO()
    train_command(
        str(tiny_dataset()),
        str(out),
        "0.1.0",
        epochs=3,
        seed=3,
        batch_size=8,
        stream=log,
        query_encoder="static",
    )
    manifest = json.loads((out / "manifest.json").read_text())
    assert QUERY_MAP in manifest["files"]
    assert json.loads((out / "model_config.json").read_text())["encoder_quantize"] == "static"
    artifact = load_artifact(str(out))
    ranked = artifact.rank("population statistics", 5)
    assert len(ranked) == 5
    assert ranked == load_artifact(str(out)).rank("population statistics", 5)
    # a broken map is caught by the digests
    (out / QUERY_MAP).write_bytes(b"not a map")
    with pytest.raises(Exception, match=QUERY_MAP):
        load_artifact(str(out))


def test_static_precision_on_a_model_without_a_map_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RANKOPS_ENCODER_PRECISION", "static")
    with pytest.raises(ValueError, match="--query-encoder static"):
        load_artifact(str(tiny_artifact()))
