"""Traffic routers: replica ratio and HTTPRoute weights."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rankops.operator.core.routing import (
    ReplicaSplit,
    desired_replicas,
    gateway_split,
    replica_split,
    route_weights,
)
from rankops.operator.core.spec import TrafficRouting


@pytest.mark.parametrize(
    ("weight", "replicas", "stable", "canary"),
    [
        (0, 4, 4, 0),
        (10, 4, 3, 1),  # 0.4 rounds to 0, but a weighted canary gets a pod
        (25, 4, 3, 1),
        (50, 4, 2, 2),
        (60, 4, 2, 2),  # 2.4 -> 2
        (63, 4, 1, 3),  # 2.52 -> 3 (half up)
        (90, 4, 1, 3),  # 3.6 -> 4, but stable keeps a pod below 100
        (100, 4, 0, 4),
        (50, 1, 1, 1),  # a single replica surges to one pod per track
        (100, 1, 0, 1),
        (12, 10, 9, 1),  # 1.2 -> 1
        (15, 10, 8, 2),  # 1.5 -> 2 (half up)
    ],
)
def test_replica_split_table(weight: int, replicas: int, stable: int, canary: int) -> None:
    assert replica_split(weight, replicas) == ReplicaSplit(stable=stable, canary=canary)


@given(weight=st.integers(0, 100), replicas=st.integers(1, 200))
def test_replica_split_invariants(weight: int, replicas: int) -> None:
    split = replica_split(weight, replicas)
    expected_total = max(replicas, 2) if 0 < weight < 100 else replicas
    assert split.total == expected_total
    assert split.stable >= 0 and split.canary >= 0
    assert (split.canary >= 1) == (weight > 0)
    if weight < 100 and split.total >= 2:
        assert split.stable >= 1
    # as close to the asked weight as whole pods allow
    if 0 < weight < 100 and split.total > 2:
        assert abs(split.effective_weight - weight) <= 100 / split.total


@given(a=st.integers(0, 100), b=st.integers(0, 100), replicas=st.integers(1, 50))
def test_replica_split_is_monotone(a: int, b: int, replicas: int) -> None:
    low, high = sorted((a, b))
    assert replica_split(low, replicas).canary <= replica_split(high, replicas).canary


@given(weight=st.integers(0, 100), replicas=st.integers(1, 50))
def test_gateway_split_keeps_stable_capacity(weight: int, replicas: int) -> None:
    split = gateway_split(weight, replicas)
    assert split.stable == replicas
    assert (split.canary >= 1) == (weight > 0)
    assert split.canary <= replicas
    weights = route_weights(weight)
    assert weights.stable + weights.canary == 100 and weights.canary == weight


def test_desired_replicas_picks_the_router() -> None:
    assert desired_replicas(TrafficRouting(), 50, 4) == ReplicaSplit(2, 2)
    assert desired_replicas(TrafficRouting(kind="gatewayAPI", http_route="r"), 50, 4) == ReplicaSplit(4, 2)


@pytest.mark.parametrize(("weight", "replicas"), [(-1, 2), (101, 2), (50, 0)])
def test_bad_inputs(weight: int, replicas: int) -> None:
    with pytest.raises(ValueError):
        replica_split(weight, replicas)


def test_effective_weight_of_empty_split() -> None:
    assert ReplicaSplit(0, 0).effective_weight == 0.0
