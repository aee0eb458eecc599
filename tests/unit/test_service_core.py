"""The ranking service's pure parts: cache, local-first rule, feedback grading, settings."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rankops.serving.artifact import CatalogItem, RankedItem
from rankops.serving.cache import TTLCache, normalize_query
from rankops.serving.feedback import FeedbackRuleError
from rankops.serving.service import (
    Quality,
    ServiceSettings,
    feedback_grades,
    local_first,
    quality_distribution,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def item(i: int, region: str = "Global") -> CatalogItem:
    return CatalogItem(id=f"d{i}", title=f"t{i}", description="", source=f"s{i}", domain="x", region=region)


# -- TTLCache -----------------------------------------------------------------------------------


def test_cache_hits_misses_and_lru_eviction() -> None:
    cache: TTLCache[str, int] = TTLCache(2, 60)
    assert cache.get("a") is None
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now most recent
    cache.put("c", 3)  # evicts b, the least recently used
    assert cache.get("b") is None
    assert cache.get("c") == 3
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.evictions, stats.size) == (2, 2, 1, 2)
    assert stats.hit_rate == pytest.approx(0.5)


def test_cache_entries_expire_after_ttl() -> None:
    clock = FakeClock()
    cache: TTLCache[str, int] = TTLCache(10, 5, clock=clock)
    cache.put("a", 1)
    clock.now += 4.9
    assert cache.get("a") == 1
    clock.now += 0.2
    assert cache.get("a") is None
    assert cache.stats().expirations == 1
    cache.put("b", 2)
    clock.now += 10
    assert cache.pop("b") is None
    cache.put("c", 3)
    cache.put("d", 4)
    clock.now += 10
    assert cache.purge_expired() == 2
    assert len(cache) == 0


def test_cache_replace_keeps_place_and_expiry() -> None:
    clock = FakeClock()
    cache: TTLCache[str, int] = TTLCache(10, 5, clock=clock)
    assert cache.replace("a", 1) is False and len(cache) == 0
    cache.put("a", 1)
    clock.now += 4
    assert cache.replace("a", 2) is True
    assert cache.get("a") == 2
    clock.now += 1.5
    assert cache.get("a") is None  # still expires 5 s after the put


def test_cache_clear_counts_and_zero_size_disables() -> None:
    cache: TTLCache[str, int] = TTLCache(10, 5)
    for key in "abc":
        cache.put(key, 1)
    assert cache.clear() == 3
    off: TTLCache[str, int] = TTLCache(0, 5)
    off.put("a", 1)
    assert off.get("a") is None and len(off) == 0
    with pytest.raises(ValueError):
        TTLCache(-1, 5)
    with pytest.raises(ValueError):
        TTLCache(1, 0)


@given(st.lists(st.tuples(st.sampled_from("abcdefgh"), st.integers()), max_size=60), st.integers(1, 5))
def test_cache_never_exceeds_its_bound_and_returns_last_write(ops: list[tuple[str, int]], bound: int) -> None:
    cache: TTLCache[str, int] = TTLCache(bound, 60)
    last: dict[str, int] = {}
    for key, value in ops:
        cache.put(key, value)
        last[key] = value
        assert len(cache) <= bound
    for key in last:
        got = cache.get(key)
        assert got is None or got == last[key]


def test_normalize_query() -> None:
    assert normalize_query("  HDB   Resale\tPrices ") == "hdb resale prices"


# -- local-first ----------------------------------------------------------------------------------


def test_local_first_boosts_region_items_within_the_margin() -> None:
    # Scores 1.0 .. 0.0 in steps of 0.1: normalised they are the same numbers.
    # relevance: the model's calibrated estimate, passed through untouched by the boost
    cands = [
        RankedItem(item(i, "Singapore" if i in (2, 9) else "Global"), 1.0 - i / 10, 0.5 - i / 100)
        for i in range(11)
    ]
    results, applied = local_first(cands, "Singapore", 3, boost=0.15)
    assert applied
    # d2 (0.8 + 0.15 = 0.95) overtakes d1 (0.9); d9 (0.1 + 0.15) does not reach the top 3.
    assert [r.id for r in results] == ["d0", "d2", "d1"]
    assert results[1].score == pytest.approx(0.95)
    assert results[1].model_score == pytest.approx(0.8)
    assert results[1].relevance == pytest.approx(0.48)


def test_local_first_without_region_keeps_model_order_and_scores() -> None:
    cands = [RankedItem(item(i), 5.0 - i) for i in range(5)]
    results, applied = local_first(cands, None, 3, boost=0.15)
    assert not applied
    assert [r.id for r in results] == ["d0", "d1", "d2"]
    assert [r.score for r in results] == [5.0, 4.0, 3.0]


def test_local_first_not_applied_when_no_candidate_is_local() -> None:
    cands = [RankedItem(item(i, "Malaysia"), 1.0 - i / 10) for i in range(5)]
    results, applied = local_first(cands, "Singapore", 5, boost=0.15)
    assert not applied
    assert [r.id for r in results] == [f"d{i}" for i in range(5)]
    assert local_first([], "Singapore", 5, 0.15) == ([], False)


@given(
    st.lists(st.floats(-10, 10, allow_nan=False), min_size=1, max_size=40),
    st.integers(1, 40),
    st.sampled_from([None, "Singapore"]),
)
def test_local_first_returns_k_sorted_distinct_results(
    scores: list[float], k: int, region: str | None
) -> None:
    cands = [RankedItem(item(i, "Singapore" if i % 3 == 0 else "Global"), s) for i, s in enumerate(scores)]
    results, _ = local_first(cands, region, k, boost=0.15)
    assert len(results) == min(k, len(scores))
    assert len({r.id for r in results}) == len(results)
    finals = [r.score for r in results]
    assert finals == sorted(finals, reverse=True)
    assert all(0.0 <= r.relevance <= 1.0 for r in results)


# -- feedback ---------------------------------------------------------------------------------------


def test_clicks_grade_one_for_clicked_zero_for_shown() -> None:
    assert feedback_grades(["a", "b", "c"], None, ["b"]) == {"a": 0, "b": 1, "c": 0}
    assert feedback_grades(["a", "b"], None, []) == {"a": 0, "b": 0}
    with pytest.raises(FeedbackRuleError, match="zzz"):
        feedback_grades(["a", "b"], None, ["zzz"])


def test_judgments_are_taken_as_given() -> None:
    assert feedback_grades(["a"], {"a": 3, "x": 4}, None) == {"a": 3, "x": 4}


def test_ratings_and_thumbs_map_onto_grades() -> None:
    stars = {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5}
    assert feedback_grades(["a"], None, None, ratings=stars) == {"a": 0, "b": 1, "c": 2, "d": 3, "e": 4}
    assert feedback_grades(["a"], None, None, thumbs={"a": "up", "b": "down"}) == {"a": 2, "b": 0}


def test_ids_outside_the_catalogue_are_refused_by_name() -> None:
    catalog = {"a", "b", "x"}
    # a judged catalogue item that was not shown ("x") is valid
    assert feedback_grades(["a"], {"a": 1, "x": 4}, None, in_catalog=catalog.__contains__) == {"a": 1, "x": 4}
    for kwargs in ({"ratings": {"a": 5, "ghost": 2}}, {"thumbs": {"ghost": "up"}}):
        with pytest.raises(FeedbackRuleError, match="1 ids are not catalogue items: 'ghost'"):
            feedback_grades(["a"], None, None, in_catalog=catalog.__contains__, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(FeedbackRuleError, match=r"12 ids .* and 2 more"):
        feedback_grades(["a"], {f"g{i:02d}": 1 for i in range(12)}, None, in_catalog=catalog.__contains__)


def test_quality_bands() -> None:
    assert quality_distribution([0.95, 0.9, 0.89, 0.7, 0.69, 0.5, 0.49, 0.0]) == {
        "excellent": 2,
        "good": 2,
        "fair": 2,
        "poor": 2,
        "total": 8,
    }
    assert quality_distribution([]) == {"excellent": 0, "good": 0, "fair": 0, "poor": 0, "total": 0}


def test_cache_values_and_drop_where_see_live_entries_only() -> None:
    clock = FakeClock()
    cache: TTLCache[str, float] = TTLCache(10, 10.0, clock=lambda: clock.now)
    cache.put("low", 0.2)
    cache.put("high", 0.95)
    cache.put("short", 0.1, ttl=1.0)
    assert sorted(cache.values()) == [0.1, 0.2, 0.95]
    clock.now += 2  # "short" expired
    assert sorted(cache.values()) == [0.2, 0.95]
    assert cache.drop_where(lambda q: q < 0.7) == 1
    assert cache.values() == [0.95] and cache.hits == 0 and cache.misses == 0


def test_quality_running_figures() -> None:
    q = Quality()
    assert q.mean_ndcg is None and q.relevance_accuracy is None and q.ndcg_stddev is None
    for value, relevant in [(1.0, True), (0.5, False), (0.0, False)]:
        q.add(value, relevant)
    assert q.mean_ndcg == pytest.approx(0.5)
    assert q.relevance_accuracy == pytest.approx(1 / 3)
    assert q.ndcg_stddev == pytest.approx(0.5)
    assert q.ndcg_squares == pytest.approx(1.25)


# -- settings ------------------------------------------------------------------------------------------


def test_settings_from_env() -> None:
    s = ServiceSettings.from_env(
        {
            "RANKOPS_MODEL": "search",
            "RANKOPS_VERSION": "2.0.0",
            "RANKOPS_TRACK": "canary",
            "RANKOPS_CACHE_ENTRIES": "0",
            "RANKOPS_GOLDEN_INTERVAL_S": "2.5",
        }
    )
    assert (s.model_name, s.version, s.track, s.cache_entries, s.golden_interval_s) == (
        "search",
        "2.0.0",
        "canary",
        0,
        2.5,
    )
    d = ServiceSettings.from_env({})
    assert (d.model_name, d.version, d.track) == ("rankops", None, "stable")
    with pytest.raises(ValueError, match="RANKOPS_CACHE_ENTRIES"):
        ServiceSettings.from_env({"RANKOPS_CACHE_ENTRIES": "many"})
    assert math.isfinite(d.region_boost)


# -- command line --------------------------------------------------------------------------------------


def test_serve_without_a_model_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from rankops.cli.main import main

    monkeypatch.delenv("RANKOPS_MODEL_URI", raising=False)
    assert main(["serve"]) == 2
    assert "RANKOPS_MODEL_URI" in capsys.readouterr().err


def test_serve_takes_the_model_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from rankops.cli.main import build_parser

    monkeypatch.setenv("RANKOPS_MODEL_URI", "s3://bucket/models/1.2.3")
    args = build_parser().parse_args(["serve", "--port", "9000"])
    assert (args.model, args.host, args.port, args.workers) == (
        "s3://bucket/models/1.2.3",
        "127.0.0.1",
        9000,
        1,
    )
