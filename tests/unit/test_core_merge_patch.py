"""``merge_patch_between``: the patch the API server turns the old status into the new one with."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from rankops.operator.core.diff import merge_patch_between
from rankops.sandbox.patching import json_merge_patch

# JSON without nulls (a status never stores one: a null in a merge patch deletes)
scalars = st.one_of(st.booleans(), st.integers(), st.text(max_size=5))
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("abcd"), inner, max_size=4),
    max_leaves=12,
)
objects = st.dictionaries(st.sampled_from("abcde"), json_values, max_size=5)


@given(objects, objects)
def test_the_patch_turns_old_into_new(old: dict[str, Any], new: dict[str, Any]) -> None:
    patch = merge_patch_between(old, new)
    assert json_merge_patch(old, patch) == new
    assert merge_patch_between(new, new) == {}


def test_a_key_the_new_object_lacks_is_nulled_at_any_depth() -> None:
    old = {
        "quality": {"value": 0.4, "rollback": {"version": "1.0.0"}, "remediation": {"step": 2, "last": "x"}}
    }
    new = {"quality": {"remediation": {"step": 3}}}
    assert merge_patch_between(old, new) == {
        "quality": {"value": None, "rollback": None, "remediation": {"step": 3, "last": None}}
    }
