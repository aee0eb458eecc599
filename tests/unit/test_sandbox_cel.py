"""The sandbox's Kubernetes CEL libraries against the examples of their documentation
(Kubernetes ``k8s.io/apiserver/pkg/cel/library`` and cel-go's strings extension)."""

from __future__ import annotations

from typing import Any

import pytest

from rankops.sandbox.cel.runtime import CELCompileError, CELEvalError, compile_rule, evaluate

TRUE = [
    # lists
    "[1, 2, 3].isSorted()",
    "['a', 'b', 'b', 'c'].isSorted()",
    "![2.0, 1.0].isSorted()",
    "[1].isSorted() && [].isSorted()",
    "[1, 3].sum() == 4 && [1.0, 3.0].sum() == 4.0 && [].sum() == 0",
    "[duration('1m'), duration('1s')].sum() == duration('1m1s')",
    "[1, 3].min() == 1 && [1, 3].max() == 3 && [1].min() == 1 && ([0] + []).min() == 0",
    "[1, 2, 2, 3].indexOf(2) == 1 && ['a', 'b', 'b', 'c'].lastIndexOf('b') == 2",
    "[1.0].indexOf(1.1) == -1 && [].indexOf('string') == -1",
    # strings
    "'hello'.charAt(4) == 'o' && 'hello'.charAt(5) == ''",
    "'hello mellow'.indexOf('') == 0 && 'hello mellow'.indexOf('ello') == 1",
    "'hello mellow'.indexOf('jello') == -1 && 'hello mellow'.indexOf('', 2) == 2",
    "'hello mellow'.indexOf('ello', 2) == 7",
    "'hello mellow'.lastIndexOf('') == 12 && 'hello mellow'.lastIndexOf('ello') == 7",
    "'hello mellow'.lastIndexOf('jello') == -1 && 'hello mellow'.lastIndexOf('ello', 6) == 1",
    "'TacoCat'.lowerAscii() == 'tacocat' && 'TacoCÆt Xii'.lowerAscii() == 'tacocÆt xii'",
    "'TacoCat'.upperAscii() == 'TACOCAT' && 'TacoCÆt Xii'.upperAscii() == 'TACOCÆT XII'",
    "'hello hello'.replace('he', 'we') == 'wello wello'",
    "'hello hello'.replace('he', 'we', -1) == 'wello wello'",
    "'hello hello'.replace('he', 'we', 1) == 'wello hello'",
    "'hello hello'.replace('he', 'we', 0) == 'hello hello'",
    "'hello hello hello'.split(' ') == ['hello', 'hello', 'hello']",
    "'hello hello hello'.split(' ', 0) == []",
    "'hello hello hello'.split(' ', 1) == ['hello hello hello']",
    "'hello hello hello'.split(' ', 2) == ['hello', 'hello hello']",
    "'hello hello hello'.split(' ', -1) == ['hello', 'hello', 'hello']",
    "'tacocat'.substring(4) == 'cat' && 'tacocat'.substring(0, 4) == 'taco'",
    "'  \\ttrim\\n    '.trim() == 'trim'",
    "['hello', 'mellow'].join() == 'hellomellow' && ['hello', 'mellow'].join(' ') == 'hello mellow'",
    "[].join() == '' && [].join('/') == ''",
    # regex
    "'abc 123'.find('[0-9]+') == '123' && 'abc 123'.find('xyz') == ''",
    "'123 abc 456'.findAll('[0-9]+') == ['123', '456']",
    "'123 abc 456'.findAll('[0-9]+', 1) == ['123'] && '123 abc 456'.findAll('xyz') == []",
    "'abc'.matches('^a') && !'abc'.matches('^b')",
    # URLs
    "url('https://example.com:80/').getHost() == 'example.com:80'",
    "url('https://example.com/').getHost() == 'example.com'",
    "url('https://[::1]:80/').getHost() == '[::1]:80' && url('https://[::1]/').getHost() == '[::1]'",
    "url('/path').getHost() == ''",
    "url('https://example.com:80/').getHostname() == 'example.com'",
    "url('https://127.0.0.1:80/').getHostname() == '127.0.0.1'",
    "url('https://[::1]:80/').getHostname() == '::1' && url('/path').getHostname() == ''",
    "url('https://example.com:80/').getPort() == '80' && url('https://example.com/').getPort() == ''",
    "url('http://example.com/').getScheme() == 'http' && url('https://example.com/').getScheme() == 'https'",
    "url('https://example.com/path').getEscapedPath() == '/path'",
    "url('https://example.com/path with spaces/').getEscapedPath() == '/path%20with%20spaces/'",
    "url('https://example.com').getEscapedPath() == ''",
    "url('https://example.com/path?k1=a&k2=b&k2=c').getQuery() == {'k1': ['a'], 'k2': ['b', 'c']}",
    "url('https://example.com/path?key with spaces=value with spaces').getQuery()"
    " == {'key with spaces': ['value with spaces']}",
    "url('https://example.com/path?').getQuery() == {} && url('https://example.com/path').getQuery() == {}",
    "isURL('https://example.com:80/path?query=1#fragment') && isURL('/absolute-path')",
    "isURL('mailto:someone@example.com')",
    "!isURL('example.com') && !isURL('../relative') && !isURL('') && !isURL('https://exa mple.com/')",
    "!isURL('https://example.com:8a/') && !isURL('https://[::1/')",
    # quantities
    "isQuantity('1.3G') && isQuantity('1.3Gi') && isQuantity('10000k') && isQuantity('1e3')",
    "!isQuantity('1,3G') && !isQuantity('200K') && !isQuantity('Three') && !isQuantity('Mi')",
    "quantity('50k').isInteger() && quantity('50k').asInteger() == 50000",
    "!quantity('9999999999999999999999999999999999999G').isInteger()",
    "quantity('1Gi').isInteger() && !quantity('1.5').isInteger()",
    "quantity('1Gi').asInteger() == 1073741824",
    "quantity('50k').sign() == 1 && quantity('-50k').sign() == -1 && quantity('0').sign() == 0",
    "quantity('50.703k').asApproximateFloat() == 50703.0 && quantity('1m').asApproximateFloat() == 0.001",
    "quantity('200M').compareTo(quantity('0.2G')) == 0",
    "quantity('50k').compareTo(quantity('50M')) == -1 && quantity('50M').compareTo(quantity('50k')) == 1",
    "quantity('50k').add(quantity('20')) == quantity('50020')",
    "quantity('50k').add(20) == quantity('50.02k')",
    "quantity('50k').sub(quantity('20')) == quantity('49980')",
    "quantity('50k').sub(20) == quantity('49.98k')",
    "quantity('50M').isLessThan(quantity('100M')) && !quantity('100M').isLessThan(quantity('50M'))",
    "quantity('100M').isGreaterThan(quantity('50M')) && !quantity('50M').isGreaterThan(quantity('100M'))",
    "quantity('1n').isLessThan(quantity('2n')) && quantity('0.1n') == quantity('1n')",  # rounded up to 1n
    # cross-type numbers
    "1 < 2.0 && 2.0 > 1 && 1 == 1.0 && 1u < 2 && [1, 2.5].isSorted()",
]

# (expression, the error a real server reports)
ERRORS = [
    ("[].min()", "min called on empty list"),
    ("[].max()", "max called on empty list"),
    ("'hello'.charAt(-1)", "index out of range: -1"),
    ("'hello mellow'.indexOf('ello', 20)", "index out of range: 20"),
    ("'hello mellow'.lastIndexOf('ello', 20)", "index out of range: 20"),
    ("'tacocat'.substring(-1)", "index out of range: -1"),
    ("'tacocat'.substring(1, 40)", "index out of range: 40"),
    ("'tacocat'.substring(2, 1)", "invalid substring range. start: 2, end: 1"),
    ("quantity('9999999999999999999999999999999999999G').asInteger()", "cannot convert value to integer"),
    ("quantity('Three')", "quantities must match the regular expression"),
    ("quantity('Mi')", "unable to parse numeric part of quantity"),
    ("url('example.com')", "URL parse error during conversion from string"),
    ("'abc'.find(self)", "error parsing regexp"),
    ("'abc'.isSorted()", "no such overload"),
]


@pytest.mark.parametrize("expression", TRUE)
def test_documented_example(expression: str) -> None:
    assert evaluate(expression, None) is True


@pytest.mark.parametrize(("expression", "error"), ERRORS, ids=[e for e, _ in ERRORS])
def test_documented_error(expression: str, error: str) -> None:
    with pytest.raises(CELEvalError) as info:
        evaluate(expression, "(")
    assert str(info.value.args[0]).startswith(error), info.value.args


@pytest.mark.parametrize(
    ("rule", "detail"),
    [
        ("self.frob()", "undeclared reference to 'frob'"),
        ("self.matches('[')", "error parsing regexp: missing ]: ["),
        ("[1].reduce(a, b, 0)", "undeclared reference to 'reduce'"),
    ],
)
def test_compile_error(rule: str, detail: str) -> None:
    with pytest.raises(CELCompileError, match="compilation failed: ERROR: <input>") as info:
        compile_rule(rule)
    assert detail in str(info.value)


@pytest.mark.parametrize(
    ("schema", "value", "rule"),
    [
        ({"type": "number"}, 1, "self == 1.0 && type(self) == double"),
        ({"type": "integer"}, 1, "type(self) == int"),
        ({"type": "string", "format": "date-time"}, "2026-01-02T03:04:05Z", "self.getFullYear() == 2026"),
        ({"type": "string", "format": "duration"}, "90s", "self == duration('1m30s')"),
        ({"type": "string", "format": "byte"}, "aGk=", "self == b'hi'"),
        ({"type": "object", "properties": {"n": {"type": "number"}}}, {"n": 2}, "self.n / 4.0 == 0.5"),
        ({"type": "array", "items": {"type": "number"}}, [1, 2], "self.sum() == 3.0"),
    ],
)
def test_values_are_typed_by_their_schema(schema: dict[str, Any], value: Any, rule: str) -> None:
    assert evaluate(rule, value, schema=schema) is True
