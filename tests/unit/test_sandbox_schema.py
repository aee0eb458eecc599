"""rankops.sandbox.schema: structural-schema pruning, defaulting and validation, CEL."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from rankops.sandbox.schema import FieldError, validate_crd, validate_custom_resource


def crd(schema: dict[str, Any], **version: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "things.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "things", "kind": "Thing"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": schema},
                    **version,
                }
            ],
        },
    }


def spec_schema(**props: Any) -> dict[str, Any]:
    return {"type": "object", "properties": {"spec": {"type": "object", "properties": props}}}


def thing(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "example.com/v1", "kind": "Thing", "metadata": {"name": "t"}, "spec": spec}


def errors_of(schema: dict[str, Any], obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[str]:
    return [str(e) for e in validate_custom_resource(crd(schema), obj, old)[1]]


def test_valid_object_has_no_errors_and_is_not_mutated() -> None:
    obj = thing(size=3)
    before = copy.deepcopy(obj)
    result, errors = validate_custom_resource(crd(spec_schema(size={"type": "integer"})), obj)
    assert errors == [] and result == before and obj == before


@pytest.mark.parametrize(
    ("prop", "value", "expected"),
    [
        (
            {"type": "integer", "maximum": 100},
            150,
            "spec.v: Invalid value: 150: spec.v in body should be less than or equal to 100",
        ),
        (
            {"type": "integer", "minimum": 0},
            -1,
            "spec.v: Invalid value: -1: spec.v in body should be greater than or equal to 0",
        ),
        (
            {"type": "integer", "maximum": 10, "exclusiveMaximum": True},
            10,
            "spec.v: Invalid value: 10: spec.v in body should be less than 10",
        ),
        (
            {"type": "string", "enum": ["a", "b"]},
            "c",
            'spec.v: Unsupported value: "c": supported values: "a", "b"',
        ),
        (
            {"type": "string", "pattern": "^[a-z]+$"},
            "A1",
            "spec.v: Invalid value: \"A1\": spec.v in body should match '^[a-z]+$'",
        ),
        ({"type": "string", "maxLength": 3}, "abcd", "spec.v: Too long: may not be more than 3 bytes"),
        (
            {"type": "string", "minLength": 2},
            "a",
            'spec.v: Invalid value: "a": spec.v in body should be at least 2 chars long',
        ),
        (
            {"type": "array", "maxItems": 1, "items": {"type": "integer"}},
            [1, 2],
            "spec.v: Too many: 2: must have at most 1 items",
        ),
        (
            {"type": "array", "minItems": 1},
            [],
            "spec.v: Invalid value: 0: spec.v in body should have at least 1 items",
        ),
        (
            {"type": "integer"},
            "x",
            'spec.v: Invalid value: "x": spec.v in body must be of type integer: "string"',
        ),
        (
            {"type": "string", "format": "date-time"},
            "yesterday",
            'spec.v: Invalid value: "yesterday": spec.v in body must be of type date-time: "yesterday"',
        ),
        (
            {"x-kubernetes-int-or-string": True},
            1.5,
            "spec.v: Invalid value: 1.5: spec.v in body must be of type integer,string: 1.5",
        ),
        (
            {"type": "string"},
            None,
            'spec.v: Invalid value: "null": spec.v in body must be of type string: "null"',
        ),
    ],
)
def test_value_validations(prop: dict[str, Any], value: Any, expected: str) -> None:
    assert errors_of(spec_schema(v=prop), thing(v=value)) == [expected]


def test_required() -> None:
    schema = {
        "type": "object",
        "properties": {
            "spec": {"type": "object", "required": ["model"], "properties": {"model": {"type": "string"}}}
        },
    }
    [error] = validate_custom_resource(crd(schema), thing())[1]
    assert (error.path, error.reason, str(error)) == (
        "spec.model",
        "FieldValueRequired",
        "spec.model: Required value",
    )


def test_nullable_and_int_or_string_accept() -> None:
    schema = spec_schema(n={"type": "string", "nullable": True}, p={"x-kubernetes-int-or-string": True})
    assert errors_of(schema, thing(n=None, p=80)) == [] and errors_of(schema, thing(p="http")) == []


def test_defaults_are_applied_deeply() -> None:
    schema = spec_schema(
        rollout={
            "type": "object",
            "default": {},
            "properties": {
                "mode": {"type": "string", "default": "replicaRatio"},
                "steps": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "pause": {"type": "string", "default": "1m"},
                            "weight": {"type": "integer"},
                        },
                    },
                },
            },
        }
    )
    result, errors = validate_custom_resource(crd(schema), thing())
    assert errors == [] and result["spec"]["rollout"] == {"mode": "replicaRatio"}
    result, _ = validate_custom_resource(crd(schema), thing(rollout={"steps": [{"weight": 5}]}))
    assert result["spec"]["rollout"]["steps"] == [{"weight": 5, "pause": "1m"}]


def test_unknown_fields_are_pruned_unless_preserved() -> None:
    schema = spec_schema(
        known={"type": "string"},
        free={"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        labels={"type": "object", "additionalProperties": {"type": "string"}},
    )
    result, errors = validate_custom_resource(
        crd(schema), {**thing(known="k", unknown="u", free={"a": {"b": 1}}, labels={"x": "y"}), "junk": 1}
    )
    assert errors == []
    assert result["spec"] == {"known": "k", "free": {"a": {"b": 1}}, "labels": {"x": "y"}}
    assert "junk" not in result and result["metadata"] == {"name": "t"}


def test_additional_properties_are_validated_with_key_paths() -> None:
    schema = spec_schema(labels={"type": "object", "additionalProperties": {"type": "string"}})
    assert errors_of(schema, thing(labels={"a": 1})) == [
        'spec.labels[a]: Invalid value: 1: spec.labels[a] in body must be of type string: "integer"'
    ]


def test_cel_rule_with_message() -> None:
    schema = spec_schema(
        steps={
            "type": "array",
            "items": {"type": "object", "properties": {"weight": {"type": "integer"}}},
            "x-kubernetes-validations": [
                {"rule": "self[size(self) - 1].weight == 100", "message": "last step must be 100"}
            ],
        }
    )
    assert errors_of(schema, thing(steps=[{"weight": 10}])) == [
        'spec.steps: Invalid value: "array": last step must be 100'
    ]
    assert errors_of(schema, thing(steps=[{"weight": 100}])) == []


def test_cel_cross_field_rule_and_message_expression() -> None:
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {"target": {"type": "number"}, "breach": {"type": "number"}},
                "x-kubernetes-validations": [
                    {
                        "rule": "self.breach < self.target",
                        "messageExpression": "'breach ' + string(self.breach) + ' must be below target'",
                    }
                ],
            }
        },
    }
    assert errors_of(schema, thing(target=0.7, breach=0.8)) == [
        'spec: Invalid value: "object": breach 0.8 must be below target'
    ]


def test_cel_transition_rule_uses_old_self() -> None:
    schema = spec_schema(
        code={
            "type": "string",
            "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "immutable"}],
        }
    )
    assert errors_of(schema, thing(code="a")) == []  # create: transition rules are skipped
    # A real server shows the node's schema type as the value of a failed rule, not the data.
    assert errors_of(schema, thing(code="b"), old=thing(code="a")) == [
        'spec.code: Invalid value: "string": immutable'
    ]
    assert errors_of(schema, thing(code="a"), old=thing(code="a")) == []


def test_cel_rule_default_message_and_field_path() -> None:
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {"a": {"type": "integer"}},
                "x-kubernetes-validations": [
                    {"rule": "self.a > 0", "fieldPath": ".a", "reason": "FieldValueForbidden"}
                ],
            }
        },
    }
    [error] = validate_custom_resource(crd(schema), thing(a=0))[1]
    assert error.path == "spec.a" and error.reason == "FieldValueForbidden"
    assert error.message == "failed rule: self.a > 0"


def test_name_must_be_dns_subdomain() -> None:
    obj = thing()
    obj["metadata"]["name"] = "Bad_Name"
    [error] = validate_custom_resource(crd(spec_schema()), obj)[1]
    assert error.path == "metadata.name"


def test_wrong_version_is_reported() -> None:
    obj = thing()
    obj["apiVersion"] = "example.com/v9"
    [error] = validate_custom_resource(crd(spec_schema()), obj)[1]
    assert error.path == "apiVersion" and error.reason == "FieldValueNotSupported"


def test_field_error_cause() -> None:
    error = FieldError("spec.x", "should be less than or equal to 1", value=2)
    assert error.as_cause() == {
        "reason": "FieldValueInvalid",
        "field": "spec.x",
        "message": "Invalid value: 2: should be less than or equal to 1",
    }


def test_validate_crd() -> None:
    good = crd(spec_schema())
    assert validate_crd(good) == []
    bad = copy.deepcopy(good)
    bad["spec"]["versions"][0]["storage"] = False
    bad["metadata"]["name"] = "wrong"
    assert sorted(e.path for e in validate_crd(bad)) == ["metadata.name", "spec.versions"]
    broken = crd({"type": "object", "x-kubernetes-validations": [{"rule": "self.a ==", "message": "x"}]})
    assert [e.path for e in validate_crd(broken)] == [
        "spec.versions[0].schema.openAPIV3Schema.x-kubernetes-validations[0].rule"
    ]


def test_root_metadata_is_never_pruned_even_when_declared() -> None:
    schema = {"type": "object", "properties": {"metadata": {"type": "object"}, "spec": {"type": "object"}}}
    obj = thing()
    obj["metadata"].update({"namespace": "ns", "labels": {"a": "b"}, "annotations": {"x": "y"}})
    result, errors = validate_custom_resource(crd(schema), obj)
    assert errors == [] and result["metadata"] == obj["metadata"]
