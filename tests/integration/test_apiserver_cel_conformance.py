"""Conformance of the sandbox API server's CEL with a real API server's.

The Kubernetes CEL libraries (lists, strings, regex, URLs, quantities), cross-type numeric
comparison, the error texts of failed and erroring rules, and the cost limits that refuse a
CRD at creation. Every case goes over HTTP: the probe CRD is created through the API, each
case is a property of its spec carrying one rule, and an object setting only that property
is accepted (the good value) or refused with the server's 422 (the bad one). Expected
values follow the Kubernetes documentation of each library.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from rankops.sandbox.apiserver import SandboxAPIServer

GROUP = "cel.rankops.dev"
CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
BUDGET_HINT = (
    "(try simplifying the rule, or adding maxItems, maxProperties, and maxLength where arrays, maps, "
    "and strings are declared)"
)

INTS = {"type": "array", "maxItems": 16, "items": {"type": "integer"}}
WORDS = {"type": "array", "maxItems": 16, "items": {"type": "string", "maxLength": 32}}
TEXT = {"type": "string", "maxLength": 256}

# (case, schema, rule, accepted value, refused value)
CASES: list[tuple[str, dict[str, Any], str, Any, Any]] = [
    # lists library
    ("isSorted", INTS, "self.isSorted()", [1, 2, 2, 3], [3, 1]),
    ("isSortedStrings", WORDS, "self.isSorted()", ["a", "b", "b"], ["b", "a"]),
    ("sum", INTS, "self.sum() == 10", [1, 2, 3, 4], [1]),
    ("min", INTS, "self.min() >= 1", [1, 5], [0, 5]),
    ("max", INTS, "self.max() <= 100", [100, 1], [101]),
    ("listIndexOf", INTS, "self.indexOf(7) == 0", [7, 7], [1, 7]),
    ("listLastIndexOf", INTS, "self.lastIndexOf(7) == 1", [7, 7], [7, 1]),
    ("mapIsSorted", {**INTS, "items": {"type": "object", "properties": {"w": {"type": "integer"}}}},
     "self.map(s, s.w).isSorted()", [{"w": 1}, {"w": 5}], [{"w": 5}, {"w": 1}]),
    ("all", INTS, "self.all(x, x > 0)", [1, 2], [1, 0]),
    ("exists", INTS, "self.exists(x, x == 7)", [1, 7], [1, 2]),
    ("existsOne", INTS, "self.exists_one(x, x == 7)", [7, 1], [7, 7]),
    ("filter", INTS, "self.filter(x, x > 2) == [3, 4]", [1, 3, 4], [3]),
    # strings extension
    ("charAt", TEXT, "self.charAt(1) == 'b'", "abc", "axc"),
    ("indexOf", TEXT, "self.indexOf('b') == 1", "abc", "bac"),
    ("indexOfOffset", TEXT, "self.indexOf('a', 1) == 2", "aba", "aab"),
    ("lastIndexOf", TEXT, "self.lastIndexOf('a') == 2", "aba", "aab"),
    ("lowerAscii", TEXT, "self.lowerAscii() == self", "abc", "Abc"),
    ("upperAscii", TEXT, "self.upperAscii() == 'ABC'", "aBc", "abd"),
    ("replace", TEXT, "self.replace('-', '') == 'abc'", "a-b-c", "a_b_c"),
    ("replaceN", TEXT, "self.replace('-', '', 1) == 'ab-c'", "a-b-c", "a_b-c"),
    ("split", TEXT, "self.split(',') == ['a', 'b', 'c']", "a,b,c", "a,b"),
    ("splitN", TEXT, "self.split(',', 2) == ['a', 'b,c']", "a,b,c", "a,b"),
    ("substring", TEXT, "self.substring(0, 3) == 'abc'", "abcdef", "abxdef"),
    ("substringFrom", TEXT, "self.substring(4) == 'ef'", "abcdef", "abcdefg"),
    ("trim", TEXT, "self.trim() == self", "abc", " abc\t"),
    ("join", WORDS, "self.join('-') == 'a-b'", ["a", "b"], ["a", "c"]),
    ("joinBare", WORDS, "self.join() == 'ab'", ["a", "b"], ["b", "a"]),
    # regex
    ("matches", TEXT, "self.matches('^[a-z]+$')", "abc", "ab1"),
    ("find", TEXT, "self.find('[0-9]+') == '42'", "ab42cd7", "ab43"),
    ("findAll", TEXT, "self.findAll('[0-9]+') == ['1', '23']", "1a23", "123"),
    ("findAllN", TEXT, "self.findAll('[0-9]', 2) == ['1', '2']", "1a2b3", "1a"),
    # URLs
    ("isURL", TEXT, "isURL(self)", "https://example.com/x", "example.com"),
    ("isURLPath", TEXT, "isURL(self)", "/absolute/path", "../relative"),
    ("getScheme", TEXT, "url(self).getScheme() == 'https'", "https://e.com", "http://e.com"),
    ("getHost", TEXT, "url(self).getHost() == 'e.com:8443'", "https://e.com:8443/", "https://e.com/"),
    ("getHostname", TEXT, "url(self).getHostname() == '::1'", "https://[::1]:80/", "https://e.com/"),
    ("getPort", TEXT, "url(self).getPort() == '8443'", "https://e.com:8443/", "https://e.com/"),
    ("getEscapedPath", TEXT, "url(self).getEscapedPath() == '/a%20b'", "https://e.com/a b", "https://e.com/ab"),
    ("getQuery", TEXT, "url(self).getQuery() == {'k': ['a', 'b']}", "https://e.com/?k=a&k=b#f", "https://e.com/?k=a"),
    # quantities
    ("isQuantity", TEXT, "isQuantity(self)", "1.3Gi", "1.3Gb"),
    ("sign", TEXT, "quantity(self).sign() == 1", "1", "-1"),
    ("isInteger", TEXT, "quantity(self).isInteger()", "1Gi", "1.5"),
    ("asInteger", TEXT, "quantity(self).asInteger() == 1024", "1Ki", "1k"),
    ("asApproximateFloat", TEXT, "quantity(self).asApproximateFloat() < 0.01", "1m", "1"),
    ("add", TEXT, "quantity(self).add(quantity('1Gi')).compareTo(quantity('2Gi')) == 0", "1024Mi", "1G"),
    ("addInt", TEXT, "quantity(self).add(1).compareTo(quantity('2')) == 0", "1000m", "2"),
    ("sub", TEXT, "quantity(self).sub(quantity('500m')).compareTo(quantity('0.5')) == 0", "1", "2"),
    ("subInt", TEXT, "quantity(self).sub(1).sign() == 0", "1", "2"),
    ("compareTo", TEXT, "quantity(self).compareTo(quantity('1000m')) == 0", "1", "2"),
    ("isGreaterThan", TEXT, "quantity(self).isGreaterThan(quantity('500Mi'))", "1Gi", "100Mi"),
    ("isLessThan", TEXT, "quantity(self).isLessThan(quantity('1k'))", "999", "1e3"),
    # numbers: a number field is a double even when the JSON has no fraction
    ("crossTypeNumber", {"type": "number"}, "self > 0.5 && self == 1", 1, 0),
    ("crossTypeInt", {"type": "integer"}, "self < 2.5", 2, 3),
    # formats: date-time is a timestamp, duration a duration
    ("timestamp", {"type": "string", "format": "date-time"},
     "self > timestamp('2026-01-01T00:00:00Z')", "2026-06-01T00:00:00Z", "2025-06-01T00:00:00Z"),
    ("duration", {"type": "string", "format": "duration"}, "self <= duration('1h')", "30m", "2h"),
]  # fmt: skip

# (case, schema, rule, value, the error a real server reports for it)
ERRORS: list[tuple[str, dict[str, Any], str, Any, str]] = [
    ("maxEmpty", INTS, "self.max() <= 100", [], "max called on empty list"),
    ("minEmpty", INTS, "self.min() >= 1", [], "min called on empty list"),
    ("charAtRange", TEXT, "self.charAt(5) == 'x'", "abc", "index out of range: 5"),
    ("substringRange", TEXT, "self.substring(0, 3) == 'abc'", "ab", "index out of range: 3"),
    ("substringOrder", TEXT, "self.substring(2, 1) == ''", "abc", "invalid substring range"),
    ("asIntegerFraction", TEXT, "quantity(self).asInteger() > 0", "1.5", "cannot convert value to integer"),
    ("badQuantity", TEXT, "quantity(self).sign() >= 0", "1Gb", "quantities must match the regular"),
    ("badURL", TEXT, "url(self).getScheme() == 'https'", "example.com", "URL parse error during conversion"),
]  # fmt: skip

ALL_CASES = [(c[0], c[1], c[2]) for c in CASES] + [(c[0], c[1], c[2]) for c in ERRORS]


def crd(name: str, spec_properties: dict[str, Any]) -> dict[str, Any]:
    plural = f"{name}s"
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"plural": plural, "singular": name, "kind": name.capitalize()},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {"spec": {"type": "object", "properties": spec_properties}},
                        }
                    },
                }
            ],
        },
    }


def probe_properties() -> dict[str, Any]:
    props: dict[str, Any] = {}
    for case, schema, rule in ALL_CASES:
        props[case] = {
            **copy.deepcopy(schema),
            "x-kubernetes-validations": [{"rule": rule, "message": f"{case} failed"}],
        }
    return props


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with (
        SandboxAPIServer.in_thread(crds=[], gc_delay=0.01) as server,
        httpx.Client(base_url=server.url, timeout=10) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def probes(http: httpx.Client) -> str:
    r = http.post(CRDS, json=crd("probe", probe_properties()))
    assert r.status_code == 201, r.text
    return f"/apis/{GROUP}/v1/namespaces/default/probes"


def post_probe(http: httpx.Client, path: str, case: str, value: Any) -> httpx.Response:
    body = {
        "apiVersion": f"{GROUP}/v1",
        "kind": "Probe",
        "metadata": {"name": f"p-{uuid.uuid4().hex[:10]}"},
        "spec": {case: value},
    }
    return http.post(path, json=body)


def type_shown(schema: dict[str, Any]) -> str:
    return str(schema.get("type", ""))


@pytest.mark.parametrize(("case", "schema", "rule", "good", "bad"), CASES, ids=[c[0] for c in CASES])
def test_library_function(
    http: httpx.Client, probes: str, case: str, schema: dict[str, Any], rule: str, good: Any, bad: Any
) -> None:
    accepted = post_probe(http, probes, case, good)
    assert accepted.status_code == 201, accepted.text
    refused = post_probe(http, probes, case, bad)
    assert refused.status_code == 422, refused.text
    assert refused.json()["details"]["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "field": f"spec.{case}",
            "message": f'Invalid value: "{type_shown(schema)}": {case} failed',
        }
    ]


@pytest.mark.parametrize(("case", "schema", "rule", "value", "error"), ERRORS, ids=[c[0] for c in ERRORS])
def test_evaluation_error(
    http: httpx.Client, probes: str, case: str, schema: dict[str, Any], rule: str, value: Any, error: str
) -> None:
    r = post_probe(http, probes, case, value)
    assert r.status_code == 422, r.text
    [cause] = r.json()["details"]["causes"]
    assert cause["field"] == f"spec.{case}"
    assert cause["message"].startswith(f'Invalid value: "{type_shown(schema)}": {error}'), cause
    assert cause["message"].endswith(f" evaluating rule: {case} failed"), cause


def rule_field(prop: str, idx: int = 0) -> str:
    return (
        "spec.versions[0].schema.openAPIV3Schema.properties[spec].properties"
        f"[{prop}].x-kubernetes-validations[{idx}].rule"
    )


def test_unbounded_list_of_unbounded_strings_is_refused_for_its_cost(http: httpx.Client) -> None:
    tags = {
        "type": "array",
        "items": {"type": "string"},
        "x-kubernetes-validations": [{"rule": "self.all(x, x.contains('gpu'))"}],
    }
    r = http.post(CRDS, json=crd("costly", {"tags": tags}))
    assert r.status_code == 422, r.text
    causes = r.json()["details"]["causes"]
    assert causes == [
        {
            "reason": "FieldValueForbidden",
            "field": rule_field("tags"),
            "message": "Forbidden: estimated rule cost exceeds budget by factor of more than 100x"
            f" {BUDGET_HINT}",
        },
        {
            "reason": "FieldValueForbidden",
            "field": rule_field("tags"),
            "message": "Forbidden: contributed to estimated rule cost total exceeding cost limit for entire"
            " OpenAPIv3 schema",
        },
        {
            "reason": "FieldValueForbidden",
            "field": "spec.versions[0].schema.openAPIV3Schema",
            "message": "Forbidden: x-kubernetes-validations estimated rule cost total for entire OpenAPIv3"
            f" schema exceeds budget by factor of more than 100x {BUDGET_HINT}",
        },
    ]
    assert http.get(f"{CRDS}/costlys.{GROUP}").status_code == 404


@pytest.mark.parametrize(
    ("max_length", "largest_accepted"),
    # The largest maxItems a real server (apiextensions validation, v0.36) accepts for this rule.
    [(16, 909_090), (63, 333_333), (253, 94_339), (1024, 24_154)],
)
def test_largest_list_a_real_server_accepts(
    http: httpx.Client, max_length: int, largest_accepted: int
) -> None:
    def tags(max_items: int) -> dict[str, Any]:
        return {
            "type": "array",
            "maxItems": max_items,
            "items": {"type": "string", "maxLength": max_length},
            "x-kubernetes-validations": [{"rule": "self.all(x, x.contains('gpu'))"}],
        }

    fits = http.post(CRDS, json=crd(f"edge{max_length}", {"tags": tags(largest_accepted)}))
    assert fits.status_code == 201, fits.text
    over = http.post(CRDS, json=crd(f"over{max_length}", {"tags": tags(largest_accepted + 1)}))
    assert over.status_code == 422, over.text
    assert "estimated rule cost exceeds budget" in over.json()["details"]["causes"][0]["message"]


@pytest.mark.parametrize(
    ("max_items", "accepted", "factor"),
    [
        # all(): 1 + 1 + n * (3 + contains), contains on 16 characters (64 bytes) costs 7 + 1
        (909_090, True, None),
        (909_091, False, "1.000000x"),  # 10,000,003: Go's %f keeps six decimals
        (1_818_182, False, "2.0x"),
    ],
)
def test_bounds_bring_the_rule_within_budget(
    http: httpx.Client, max_items: int, accepted: bool, factor: str | None
) -> None:
    tags = {
        "type": "array",
        "maxItems": max_items,
        "items": {"type": "string", "maxLength": 16},
        "x-kubernetes-validations": [{"rule": "self.all(x, x.contains('gpu'))"}],
    }
    name = f"bounded{max_items}"
    r = http.post(CRDS, json=crd(name, {"tags": tags}))
    if accepted:
        assert r.status_code == 201, r.text
        return
    assert r.status_code == 422, r.text
    assert r.json()["details"]["causes"] == [
        {
            "reason": "FieldValueForbidden",
            "field": rule_field("tags"),
            "message": f"Forbidden: estimated rule cost exceeds budget by factor of {factor} {BUDGET_HINT}",
        }
    ]


def test_rule_under_a_list_counts_once_per_item(http: httpx.Client) -> None:
    """Cardinality: a rule on list items runs for every item; 20 items of a ~600,000-cost rule exceed 10M."""
    items = {
        "type": "object",
        "properties": {
            "tags": {"type": "array", "maxItems": 54_545, "items": {"type": "string", "maxLength": 16}}
        },
        "x-kubernetes-validations": [{"rule": "self.tags.all(x, x.contains('gpu'))"}],
    }
    ok = http.post(CRDS, json=crd("once", {"groups": {"type": "array", "maxItems": 1, "items": items}}))
    assert ok.status_code == 201, ok.text
    r = http.post(CRDS, json=crd("twenty", {"groups": {"type": "array", "maxItems": 20, "items": items}}))
    assert r.status_code == 422, r.text
    [cause] = r.json()["details"]["causes"]
    assert cause["field"].endswith("properties[groups].items.x-kubernetes-validations[0].rule")
    factor = 20 * (1 + 1 + 1 + 54_545 * 11) / 10_000_000  # self, .tags, all(), per item 11
    assert f"estimated rule cost exceeds budget by factor of {factor:f}x " in cause["message"]


def test_rules_within_their_budget_can_still_exceed_the_schema_total(http: httpx.Client) -> None:
    tags = {
        "type": "array",
        "maxItems": 827_272,  # 2 + 11 * 827,272 = 9,099,994 each; eleven of them pass 100,000,000
        "items": {"type": "string", "maxLength": 16},
        "x-kubernetes-validations": [{"rule": "self.all(x, x.contains('gpu'))"}],
    }
    r = http.post(CRDS, json=crd("crowded", {f"t{i:02d}": tags for i in range(11)}))
    assert r.status_code == 422, r.text
    causes = r.json()["details"]["causes"]
    assert [c["message"] for c in causes[:4]] == [
        "Forbidden: contributed to estimated rule cost total exceeding cost limit for entire OpenAPIv3 schema"
    ] * 4
    assert causes[4]["field"] == "spec.versions[0].schema.openAPIV3Schema"
    assert causes[4]["message"].startswith(
        "Forbidden: x-kubernetes-validations estimated rule cost total for entire OpenAPIv3 schema exceeds"
        " budget by factor of 1.000"
    )
    assert len(causes) == 5


def test_message_expression_cost_counts(http: httpx.Client) -> None:
    tags = {
        "type": "array",
        "items": {"type": "string"},
        "x-kubernetes-validations": [{"rule": "size(self) > 0", "messageExpression": "self.join(', ')"}],
    }
    r = http.post(CRDS, json=crd("chatty", {"tags": tags}))
    assert r.status_code == 422, r.text
    fields = [c["field"] for c in r.json()["details"]["causes"]]
    assert rule_field("tags").replace(".rule", ".messageExpression") in fields


@pytest.mark.parametrize(
    ("rule", "detail"),
    [
        ("self.frobnicate()", "undeclared reference to 'frobnicate'"),
        ("self.nope == 1", "undefined field 'nope'"),
        ("self.x.matches('(')", "error parsing regexp: missing ): ("),
        ("[1].reduce(a, b, 0) == 1", "undeclared reference to 'reduce'"),
        ("self.x ==", "Syntax error"),
        ("self.x.isSorted()", "found no matching overload for 'isSorted' applied to 'string"),
        ("self.x.getHost() == ''", "found no matching overload for 'getHost' applied to 'string"),
        ("size(self.x) + 1", "cel expression must evaluate to a bool"),
    ],
)
def test_rule_that_does_not_compile_is_refused(http: httpx.Client, rule: str, detail: str) -> None:
    spec = {
        "y": {
            "type": "object",
            "properties": {"x": {"type": "string", "maxLength": 8}},
            "x-kubernetes-validations": [{"rule": rule}],
        }
    }
    r = http.post(CRDS, json=crd(f"broken{uuid.uuid4().hex[:6]}", spec))
    assert r.status_code == 422, r.text
    [cause] = r.json()["details"]["causes"]
    assert cause["field"] == rule_field("y")
    # The server shows the rule as a Go struct dump; the emulator shows the rule's text.
    assert cause["message"].startswith(f"Invalid value: {json.dumps(rule)}: "), cause
    assert detail in cause["message"], cause
