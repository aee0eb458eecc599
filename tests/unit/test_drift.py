"""Drift statistics: PSI, KS and chi-square against a reference."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest

from rankops.serving.drift import DriftMonitor, DriftReference, compare, psi

from ._model_support import generator, tiny_artifact


def _rows(
    rng: np.random.Generator,
    n: int,
    shift: float = 0.0,
    domains: tuple[str, ...] = ("a", "b", "c"),
    p: tuple[float, ...] = (0.5, 0.3, 0.2),
) -> list[dict[str, float | str]]:
    return [
        {
            "n_tokens": float(rng.poisson(6 + shift * 4)),
            "max_score": float(rng.normal(5 + shift * 3, 1.0)),
            "domain": str(rng.choice(domains, p=p)),
        }
        for _ in range(n)
    ]


def test_same_distribution_is_quiet() -> None:
    rng = np.random.default_rng(1)
    ref = DriftReference.build(_rows(rng, 2000), seed=1)
    report = compare(ref, _rows(rng, 800))
    assert report.n == 800
    for f in report.features.values():
        assert f.psi < 0.1, f
        assert f.pvalue > 0.01, f
    assert report.features["domain"].test == "chi2"
    assert report.features["max_score"].test == "ks"
    assert report.drifted() == []


def test_shifted_distribution_is_flagged() -> None:
    rng = np.random.default_rng(2)
    ref = DriftReference.build(_rows(rng, 2000), seed=2)
    shifted = _rows(rng, 800, shift=1.0, domains=("a", "b", "c", "new"), p=(0.1, 0.1, 0.2, 0.6))
    report = compare(ref, shifted)
    for name in ("n_tokens", "max_score", "domain"):
        f = report.features[name]
        assert f.psi > 0.25, f
        assert f.pvalue < 1e-3, f
    assert set(report.drifted()) == {"n_tokens", "max_score", "domain"}


def test_psi_smoothing_keeps_empty_bins_finite() -> None:
    assert psi([0.5, 0.5, 0.0], [0.0, 0.5, 0.5]) == pytest.approx(2 * 0.5 * np.log(0.5 / 1e-4), rel=1e-3)
    assert psi([0.2, 0.8], [0.2, 0.8]) == 0.0


def test_reference_sample_is_capped_and_round_trips() -> None:
    rng = np.random.default_rng(3)
    ref = DriftReference.build(_rows(rng, 3000), vocabulary=["x", "y"], seed=3)
    assert len(ref.numeric["max_score"].sample) == 2000
    assert abs(sum(ref.numeric["max_score"].fractions) - 1) < 1e-9
    back = DriftReference.from_json(json.loads(json.dumps(ref.to_json())))
    assert back.numeric["max_score"].edges == ref.numeric["max_score"].edges
    assert back.categorical["domain"].frequencies == ref.categorical["domain"].frequencies
    assert back.vocabulary == frozenset({"x", "y"})


def test_mixed_reference_takes_model_dependent_features_from_heldout_queries() -> None:
    heldout = [{"max_score": 1.0, "domain": "a", "region": "x"}] * 3 + [
        {"max_score": 2.0, "domain": "b", "region": "x"}
    ]
    fitted = [{"max_score": 9.0, "domain": "c", "region": "y"}] * 4
    ref = DriftReference.build_mixed(heldout, heldout + fitted, seed=0)
    assert ref.categorical["domain"].frequencies == {"a": 0.75, "b": 0.25}
    assert ref.categorical["domain"].count == 4
    assert ref.numeric["max_score"].sample == [1.0, 1.0, 1.0, 2.0]
    assert ref.categorical["region"].frequencies == {"x": 0.5, "y": 0.5}
    assert ref.n_queries == 8


def test_a_rare_category_a_small_reference_missed_is_not_a_major_shift() -> None:
    # ~100 held-out queries miss a 1.5% domain about one time in five; the live window has it
    ref = DriftReference.build([{"domain": "a"}] * 80 + [{"domain": "b"}] * 20)
    window = [{"domain": "a"}] * 158 + [{"domain": "b"}] * 36 + [{"domain": "rare"}] * 6
    f = compare(ref, window).features["domain"]
    assert f.psi < 0.1, f
    assert f.pvalue > 0.05, f
    # ... while the same category taking a fifth of the traffic is
    moved = [{"domain": "a"}] * 120 + [{"domain": "b"}] * 40 + [{"domain": "rare"}] * 40
    g = compare(ref, moved).features["domain"]
    assert g.psi > 0.25 and g.pvalue < 1e-3, g


def test_monitor_keeps_a_rolling_window() -> None:
    rng = np.random.default_rng(4)
    ref = DriftReference.build(_rows(rng, 1000))
    mon = DriftMonitor(ref, window=100)
    assert mon.report().n == 0
    for row in _rows(rng, 250, shift=1.0):
        mon.observe(row)
    assert len(mon) == 100
    assert mon.report().features["max_score"].psi > 0.25
    for row in _rows(rng, 100):
        mon.observe(row)
    assert mon.report().features["max_score"].psi < 0.25
    with pytest.raises(ValueError):
        DriftMonitor(ref, window=0)


def test_monitor_window_holds_distinct_queries() -> None:
    rng = np.random.default_rng(5)
    ref = DriftReference.build(_rows(rng, 1000))
    rows = _rows(rng, 30)
    mon = DriftMonitor(ref, window=20)
    for i in range(300):  # a head of 30 queries, repeated: the window keeps each once
        mon.observe(rows[i % 30], key=f"q{i % 30}")
    assert len(mon) == 20 and mon.observed == 300
    assert mon.rows() == [dict(r) for r in rows[10:30]]  # the newest 20, oldest first
    mon.observe(rows[10], key="q10")  # seen again: moves to the newest end, adds no row
    assert len(mon) == 20 and mon.rows()[-1] == dict(rows[10]) and mon.rows()[0] == dict(rows[11])
    mon.observe(rows[0])  # no key: always a row of its own
    assert len(mon) == 20 and mon.rows()[-1] == dict(rows[0])
    # touch: a repeat counted and moved without its features (the service skips the forward pass)
    assert mon.touch("q12") and mon.rows()[-1] == dict(rows[12]) and mon.observed == 303
    assert not mon.touch("never-seen") and mon.observed == 303 and len(mon) == 20


def test_pooled_windows_count_a_query_two_pods_served_once() -> None:
    from rankops.serving.drift_check import distinct_rows

    rng = np.random.default_rng(6)
    rows = _rows(rng, 10)
    pooled = distinct_rows([*rows, *rows[3:7], {**rows[0], "max_score": 0.123456}])
    assert pooled == [*(dict(r) for r in rows), {**rows[0], "max_score": 0.123456}]


def test_pooled_windows_recognise_a_repeat_by_its_query_id_not_its_last_digits() -> None:
    from rankops.serving.drift_check import distinct_rows

    rows = _rows(np.random.default_rng(7), 4)
    # pod b passed q1 with other company: its max_score differs in the last digits
    nudged = {**rows[1], "max_score": float(rows[1]["max_score"]) + 1e-7}
    twin = dict(rows[2])  # another query with the very same features: a sample of its own
    pooled = distinct_rows([*rows, nudged, twin, rows[3]], ["q0", "q1", "q2", "q3", "q1", "q9", None])
    assert pooled == [*(dict(r) for r in rows), twin, dict(rows[3])]


def test_the_window_names_each_row_by_a_keyed_digest_of_its_query() -> None:
    from rankops.serving.artifact import load_artifact
    from rankops.serving.live_drift import LiveDrift, query_id
    from rankops.serving.telemetry import Identity, ServingMetrics

    art = load_artifact(str(tiny_artifact()))
    drift = LiveDrift(art, ServingMetrics(Identity("m", "1", "stable")), window=5, sample=10, min_samples=99)
    for text in ("bus ridership", "hdb resale prices"):
        drift.pend(text, text)
    asyncio.run(drift.refresh())
    drift.monitor.observe(dict(drift.monitor.rows()[0]))  # no key: no id
    ids, rows = drift.window()
    salt = art.sha256.encode()[:64]
    assert ids == [query_id("bus ridership", salt), query_id("hdb resale prices", salt), None]
    assert len(rows) == 3 and len(set(ids)) == 3 and all("bus" not in str(i) for i in ids)
    assert query_id("bus ridership", b"another artifact") != ids[0]


def test_a_query_pended_with_its_requests_vector_is_not_encoded_again() -> None:
    from rankops.serving.artifact import load_artifact
    from rankops.serving.drift import query_features
    from rankops.serving.live_drift import LiveDrift
    from rankops.serving.telemetry import Identity, ServingMetrics

    art = load_artifact(str(tiny_artifact()))
    assert art.query_batcher is not None
    drift = LiveDrift(art, ServingMetrics(Identity("m", "1", "stable")), window=5, sample=10, min_samples=99)
    vector = art.query_batcher.embed("bus ridership")  # what its request computed
    drift.pend("bus ridership", "bus ridership", vector)
    drift.pend("hdb resale prices", "hdb resale prices")  # served from the result cache: no vector
    before = art.query_batcher.totals[1]
    asyncio.run(drift.refresh())
    assert art.query_batcher.totals[1] - before == 1  # only the cached one was encoded
    rows = drift.monitor.rows()
    assert rows[0] == query_features(art, "bus ridership", vector)
    assert rows[1] == query_features(art, "hdb resale prices", art.query_batcher.embed("hdb resale prices"))


def test_query_features_against_the_trained_reference() -> None:
    from rankops.serving.artifact import load_artifact
    from rankops.serving.drift import query_features, query_features_many

    art = load_artifact(str(tiny_artifact()))
    f = query_features(art, "monthly bus ridership in singapore")
    assert set(f) == {"n_tokens", "n_chars", "oov_fraction", "max_score", "domain", "region"}
    assert f["region"] == "Singapore" and f["n_tokens"] == 5.0
    assert f["domain"] in art.config.domains
    assert set(art.reference.numeric) == {"n_tokens", "n_chars", "oov_fraction", "max_score"}
    assert set(art.reference.categorical) == {"domain", "region"}
    gibberish = query_features(art, "zxqv blorf wuggle")
    assert gibberish["oov_fraction"] == 1.0
    # the batched features (references, tests) are the serving path's, query for query
    queries = ["monthly bus ridership in singapore", "zxqv blorf wuggle", "", "Hawker 🍜 prices\u2028sg"]
    queries += [g.text for g in art.golden]
    for one, many in zip(
        [query_features(art, q) for q in queries],
        query_features_many(art, queries, batch_size=4),
        strict=True,
    ):
        assert {k: v for k, v in one.items() if k != "max_score"} == {
            k: v for k, v in many.items() if k != "max_score"
        }
        assert many["max_score"] == pytest.approx(one["max_score"], abs=1e-4)
    # model-dependent features describe held-out (dev) queries, not the ones the model was
    # fitted to; the query's own features come from every split's queries (a larger sample)
    assert art.manifest["training_data"]["drift_reference_split"] == "dev"
    assert len(art.reference.numeric["max_score"].sample) == 24
    assert len(art.reference.numeric["oov_fraction"].sample) == 24
    assert art.reference.categorical["domain"].count == 24
    assert (
        len(art.reference.numeric["n_chars"].sample)
        == art.reference.n_queries
        == 160 + len(generator().RUNBOOK_QUERIES)
    )
