"""rankops.sandbox.selectors: label and field selectors."""

from __future__ import annotations

import pytest

from rankops.sandbox.selectors import SelectorError, match_fields, parse_label_selector

LABELS = {"app": "m", "track": "canary", "tier": "gold"}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("", True),
        ("app=m", True),
        ("app==m", True),
        ("app=x", False),
        ("app!=x", True),
        ("app!=m", False),
        ("missing!=x", True),
        ("track in (stable,canary)", True),
        ("track in (stable)", False),
        ("track notin (stable)", True),
        ("missing notin (a)", True),
        ("tier", True),
        ("missing", False),
        ("!missing", True),
        ("!tier", False),
        ("app=m,track in (canary, stable),!missing", True),
        ("app=m,tier=silver", False),
    ],
)
def test_label_selector(selector: str, expected: bool) -> None:
    assert parse_label_selector(selector)(LABELS) is expected


@pytest.mark.parametrize("selector", ["a in b", "=x", "a b c"])
def test_invalid_label_selector(selector: str) -> None:
    with pytest.raises(SelectorError):
        parse_label_selector(selector)


def test_field_selector() -> None:
    obj = {"metadata": {"name": "a", "namespace": "ns"}, "status": {"phase": "Running"}}
    assert match_fields("metadata.name=a,metadata.namespace=ns", obj)
    assert not match_fields("metadata.name!=a", obj)
    assert match_fields("status.phase=Running", obj)
    assert match_fields("", obj)
