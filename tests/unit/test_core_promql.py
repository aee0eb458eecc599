"""PromQL built for the objectives."""

from __future__ import annotations

import pytest

from rankops.operator.core.promql import escape_label_value, objective_queries, selector
from rankops.operator.core.spec import Objective

NDCG = Objective(name="ndcg", metric="ndcg_at_3", target=0.7, breach=0.65)


def test_ndcg_queries() -> None:
    q = objective_queries(NDCG, model="m", track="canary", version="1.1.0", window_s=60)
    assert q.kind == "summary"
    assert q.count == 'sum(increase(rankops_ndcg_at_3_count{model="m",track="canary",version="1.1.0"}[60s]))'
    assert q.total == 'sum(increase(rankops_ndcg_at_3_sum{model="m",track="canary",version="1.1.0"}[60s]))'
    assert q.squares == (
        'sum(increase(rankops_ndcg_at_3_squares_sum_total{model="m",track="canary",version="1.1.0"}[60s]))'
    )
    assert q.value is None
    # The bare selectors, for exact increases from raw samples (core.counters).
    assert q.series == (
        'rankops_ndcg_at_3_count{model="m",track="canary",version="1.1.0"}',
        'rankops_ndcg_at_3_sum{model="m",track="canary",version="1.1.0"}',
        'rankops_ndcg_at_3_squares_sum_total{model="m",track="canary",version="1.1.0"}',
    )


def test_namespace_and_fractional_window() -> None:
    q = objective_queries(NDCG, model="m", track="stable", version="1.0.0", window_s=90.2, namespace="prod")
    assert 'namespace="prod"' in (q.count or "") and "[91s]" in (q.count or "")


def test_error_rate_is_a_bernoulli_summary() -> None:
    o = Objective(name="e", metric="error_rate", target=0.001, breach=0.01, direction="lowerIsBetter")
    q = objective_queries(o, model="m", track="canary", version="1", window_s=30)
    assert q.kind == "summary"
    assert q.count == 'sum(increase(rankops_requests_total{model="m",track="canary",version="1"}[30s]))'
    assert q.total == q.squares
    assert (
        q.total
        == 'sum(increase(rankops_requests_total{model="m",track="canary",version="1",code=~"5.."}[30s]))'
    )
    errors = 'rankops_requests_total{model="m",track="canary",version="1",code=~"5.."}'
    assert q.series == ('rankops_requests_total{model="m",track="canary",version="1"}', errors, errors)


def test_value_metrics() -> None:
    golden = Objective(name="g", metric="golden_ndcg_at_3", target=0.7, breach=0.65)
    assert objective_queries(golden, model="m", track="canary", version="1", window_s=30).value == (
        'avg(rankops_golden_ndcg_at_3{model="m",track="canary",version="1"})'
    )
    latency = Objective(name="l", metric="latency_p95", target=0.2, breach=0.5, direction="lowerIsBetter")
    assert objective_queries(latency, model="m", track="canary", version="1", window_s=30).value == (
        "histogram_quantile(0.95, sum by (le) "
        '(rate(rankops_request_duration_seconds_bucket{model="m",track="canary",version="1"}[30s])))'
    )


def test_custom_template_substitution_is_escaped() -> None:
    o = Objective(
        name="c",
        metric="custom",
        target=1,
        breach=0.5,
        query='sum(rate(x{model="$model",track="${track}",version="$version",ns="$namespace"}[$window]))'
        + " + $$1",
    )
    q = objective_queries(o, model='we"ird\\name', track="canary", version="1.0.0", window_s=120)
    assert q.kind == "value"
    assert q.value == 'sum(rate(x{model="we\\"ird\\\\name",track="canary",version="1.0.0",ns=""}[120s])) + $1'


def test_escaping() -> None:
    assert escape_label_value('a"b\\c\nd') == 'a\\"b\\\\c\\nd'
    assert selector("m", {"b": "2", "a": "1"}) == 'm{a="1",b="2"}'


def test_custom_without_query_is_refused() -> None:
    o = Objective(name="c", metric="custom", target=1, breach=0.5)
    with pytest.raises(ValueError):
        objective_queries(o, model="m", track="canary", version="1", window_s=30)


def test_only_built_in_summaries_have_series_selectors() -> None:
    golden = Objective(name="g", metric="golden_ndcg_at_3", target=0.7, breach=0.65)
    assert objective_queries(golden, model="m", track="canary", version="1", window_s=30).series is None
