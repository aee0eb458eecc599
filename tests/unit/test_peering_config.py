"""rankops.operator.peering: the replica's peering settings from the environment."""

from __future__ import annotations

import kopf
import pytest

from rankops.operator.peering import DEFAULT_LIFETIME, PeeringConfig


def test_unset_means_standalone() -> None:
    assert PeeringConfig.from_env({}) is None


def test_each_replica_gets_its_own_priority() -> None:
    priorities = {PeeringConfig.from_env({"RANKOPS_PEERING": "rankops"}).priority for _ in range(50)}  # type: ignore[union-attr]
    assert len(priorities) == 50 and min(priorities) >= 1


def test_explicit_values_and_apply() -> None:
    config = PeeringConfig.from_env(
        {"RANKOPS_PEERING": "rankops", "RANKOPS_PEERING_PRIORITY": "7", "RANKOPS_PEERING_LIFETIME": "9"}
    )
    assert config == PeeringConfig("rankops", 7, 9)
    settings = kopf.OperatorSettings()
    settings.peering.standalone = True
    config.apply(settings)
    assert settings.peering.standalone is False and settings.peering.mandatory is True
    assert (settings.peering.name, settings.peering.priority, settings.peering.lifetime) == ("rankops", 7, 9)
    assert PeeringConfig.from_env({"RANKOPS_PEERING": "x"}).lifetime == DEFAULT_LIFETIME  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("RANKOPS_PEERING_PRIORITY", "high", "must be an integer"),
        ("RANKOPS_PEERING_PRIORITY", "-1", "at least 0"),
        ("RANKOPS_PEERING_LIFETIME", "1", "at least 2"),
    ],
)
def test_bad_values(key: str, value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PeeringConfig.from_env({"RANKOPS_PEERING": "rankops", key: value})
