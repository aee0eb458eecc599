"""The no-write diff: whether an object read from the API server differs from the one we want. Pure.

- ``needs_update(desired, actual) -> bool``: whether ``actual`` (the object read from the
  API server) differs in any field we set in ``desired``; fields we do not set (defaults the
  API server filled in, status, other controllers' annotations) are ignored, and so are
  empty values we set that the API server drops (``""``, ``{}``, ``[]``, ``null``:
  ``omitempty``). Resource quantities (the values under ``limits``/``requests``, and
  ``sizeLimit``) compare by value, as the API server stores them in canonical form
  (``0.5`` -> ``500m``, ``1073741824`` -> ``1Gi``). Apply with a merge patch of ``desired``
  when True, create when absent, and make no write otherwise.
- ``merge_patch_between(old, new)``: the JSON merge patch (RFC 7386) that turns ``old`` into
  ``new``. The API server merges objects key by key, so a key ``new`` lacks is sent as null
  (sending ``new`` whole would keep it).
- ``parse_quantity(value) -> Fraction`` (Kubernetes ``resource.Quantity`` syntax, rounded up
  to nano units as the API server does) and ``quantities_equal(a, b)``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

__all__ = ["merge_patch_between", "needs_update", "parse_quantity", "quantities_equal"]


# <signedNumber><suffix> (k8s.io/apimachinery resource.Quantity): binary SI, a decimal exponent, or
# decimal SI ("E" alone is exa; "E3" and "e3" are exponents).
_QUANTITY_RE = re.compile(
    r"^(?P<number>[+-]?(?:\d+(?:\.\d*)?|\.\d+))"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?\d+|n|u|m|k|M|G|T|P|E)?$"
)
_BINARY_SI = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL_SI = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_NANO = 10**9
# Keys holding quantities: maps of them (container/PVC resources, pod overhead) or one (emptyDir).
_QUANTITY_FIELDS = frozenset({"limits", "requests", "overhead", "sizeLimit"})


def parse_quantity(value: str | int | float) -> Fraction:
    """The value of a Kubernetes quantity (``500m``, ``0.5``, ``1Gi``, ``1e3``, ``2``), in base units.

    Rounded up to nano units, as the API server canonicalises. Raises ``ValueError`` for anything
    that is not a quantity.
    """
    if isinstance(value, bool):
        raise ValueError(f"not a quantity: {value!r}")
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"not a quantity: {value!r}")
        text = repr(value)
    elif isinstance(value, str):
        text = value.strip()
    else:
        raise ValueError(f"not a quantity: {value!r}")
    if isinstance(value, float):
        try:
            number = Fraction(Decimal(text))
        except InvalidOperation:
            raise ValueError(f"not a quantity: {value!r}") from None
        suffix = ""
    else:
        match = _QUANTITY_RE.match(text)
        if match is None:
            raise ValueError(f"not a quantity: {value!r}")
        number = Fraction(Decimal(match["number"]))
        suffix = match["suffix"] or ""
    if suffix in _BINARY_SI:
        number *= 1024 ** _BINARY_SI[suffix]
    elif suffix in _DECIMAL_SI:
        number *= Fraction(10) ** _DECIMAL_SI[suffix]
    else:  # a decimal exponent
        number *= Fraction(10) ** int(suffix[1:])
    return Fraction(math.ceil(number * _NANO), _NANO)


def quantities_equal(a: Any, b: Any) -> bool:
    """Whether two quantities have the same value; literal equality when either is not a quantity."""
    try:
        return parse_quantity(a) == parse_quantity(b)
    except ValueError:
        return bool(a == b)


def _empty(value: Any) -> bool:
    """Values the API server drops under ``omitempty`` (so an absent key matches them).

    A mapping of nothing but empty values counts as empty too (``resources: {limits: {}}``).
    """
    if isinstance(value, Mapping):
        return all(_empty(v) for v in value.values())
    return value is None or value == "" or (isinstance(value, list | tuple) and len(value) == 0)


def needs_update(desired: Any, actual: Any) -> bool:
    """True when some field set in ``desired`` is missing from or different in ``actual``.

    Mappings compare the keys of ``desired`` only, an empty value in ``desired`` matching an
    absent key; lists must have the same length and compare element by element (so extra
    defaults inside list items are ignored too, while an item removed from ``desired`` is a
    change); resource quantities compare by value; other scalars by equality, except that
    ``1`` and ``1.0`` are equal (but ``True`` and ``1`` are not).
    """
    return _differs(desired, actual, quantity=False)


def _differs(desired: Any, actual: Any, *, quantity: bool) -> bool:
    """``quantity``: scalars here (or the values of this mapping) are resource quantities."""
    if isinstance(desired, Mapping):
        if not isinstance(actual, Mapping):
            return not (_empty(desired) and actual is None)
        for key, value in desired.items():
            current = actual.get(key)
            if current is None:
                if _empty(value):
                    continue
                return True
            if _differs(value, current, quantity=quantity or key in _QUANTITY_FIELDS):
                return True
        return False
    if isinstance(desired, list | tuple):
        if not isinstance(actual, list | tuple) or len(actual) != len(desired):
            return True
        return any(_differs(d, a, quantity=False) for d, a in zip(desired, actual, strict=True))
    if isinstance(desired, bool) or isinstance(actual, bool):
        return not (isinstance(desired, bool) and isinstance(actual, bool) and desired == actual)
    if quantity:
        return not quantities_equal(desired, actual)
    return bool(desired != actual)


def merge_patch_between(old: Any, new: Any) -> Any:
    """The RFC 7386 merge patch from ``old`` to ``new`` (objects recursively, anything else whole)."""
    if not (isinstance(old, Mapping) and isinstance(new, Mapping)):
        return new
    patch = {k: merge_patch_between(old.get(k), v) for k, v in new.items() if old.get(k) != v}
    patch.update({k: None for k in old if k not in new and old[k] is not None})
    return patch
