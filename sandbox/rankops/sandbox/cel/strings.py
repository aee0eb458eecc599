"""The CEL strings extension as Kubernetes enables it (cel-go ``ext.Strings``).

``charAt``, ``indexOf``, ``lastIndexOf``, ``lowerAscii``, ``upperAscii``, ``replace``,
``split``, ``substring``, ``trim``, ``join``. Indexes count code points, as in cel-go;
out-of-range indexes are errors with cel-go's messages. ``indexOf``/``lastIndexOf`` on a
list go to the lists library. Not provided: ``format``, ``strings.quote``, ``reverse``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celpy import celtypes
from celpy.evaluation import CELEvalError

from rankops.sandbox.cel.lists import list_index_of, list_last_index_of

__all__ = ["FUNCTIONS"]

# Go's unicode.IsSpace (strings.TrimSpace): Python's str.isspace also counts \x1c-\x1f.
_GO_SPACE = (
    "\t\n\v\f\r \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u2028\u2029\u202f\u205f\u3000"
)


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"no such overload: {name} on {type(value).__name__}")
    return value


def _int(value: Any, name: str) -> int:
    if not isinstance(value, celtypes.IntType):
        raise TypeError(f"no such overload: {name} with {type(value).__name__}")
    return int(value)


def _out_of_range(index: int) -> CELEvalError:
    return CELEvalError(f"index out of range: {index}")


def char_at(value: Any, index: Any) -> Any:
    text, idx = _text(value, "charAt"), _int(index, "charAt")
    if idx < 0 or idx > len(text):
        return _out_of_range(idx)
    return celtypes.StringType(text[idx : idx + 1])


def index_of(value: Any, needle: Any, offset: Any = None) -> Any:
    if isinstance(value, list) and offset is None:
        return list_index_of(value, needle)
    text, sub = _text(value, "indexOf"), _text(needle, "indexOf")
    start = 0 if offset is None else _int(offset, "indexOf")
    if sub == "":
        return celtypes.IntType(start)
    if start < 0 or (start >= len(text) and not (start == 0 and text == "")):
        return _out_of_range(start)
    return celtypes.IntType(text.find(sub, start))


def last_index_of(value: Any, needle: Any, offset: Any = None) -> Any:
    if isinstance(value, list) and offset is None:
        return list_last_index_of(value, needle)
    text, sub = _text(value, "lastIndexOf"), _text(needle, "lastIndexOf")
    if offset is None:
        return celtypes.IntType(len(text) if sub == "" else text.rfind(sub))
    start = _int(offset, "lastIndexOf")
    if sub == "":
        return celtypes.IntType(start)
    if start < 0 or start >= len(text):
        return _out_of_range(start)
    return celtypes.IntType(text.rfind(sub, 0, start + len(sub)))


def _ascii_case(upper: bool) -> Callable[[Any], Any]:
    table = str.maketrans(
        "abcdefghijklmnopqrstuvwxyz" if upper else "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
        "ABCDEFGHIJKLMNOPQRSTUVWXYZ" if upper else "abcdefghijklmnopqrstuvwxyz",
    )

    def convert(value: Any) -> Any:
        return celtypes.StringType(_text(value, "upperAscii" if upper else "lowerAscii").translate(table))

    return convert


def replace(value: Any, old: Any, new: Any, count: Any = None) -> Any:
    text = _text(value, "replace")
    limit = -1 if count is None else _int(count, "replace")
    return celtypes.StringType(text.replace(_text(old, "replace"), _text(new, "replace"), limit))


def split(value: Any, separator: Any, count: Any = None) -> Any:
    text, sep = _text(value, "split"), _text(separator, "split")
    limit = -1 if count is None else _int(count, "split")
    if limit == 0:
        return celtypes.ListType([])
    if sep == "":  # Go's strings.SplitN explodes into code points
        parts = list(text)
        if 0 < limit < len(parts):
            parts = [*parts[: limit - 1], "".join(parts[limit - 1 :])]
    else:
        parts = text.split(sep, limit - 1 if limit > 0 else -1)
    return celtypes.ListType([celtypes.StringType(p) for p in parts])


def substring(value: Any, start: Any, end: Any = None) -> Any:
    text = _text(value, "substring")
    begin = _int(start, "substring")
    stop = len(text) if end is None else _int(end, "substring")
    if begin < 0 or begin > len(text):
        return _out_of_range(begin)
    if stop < 0 or stop > len(text):
        return _out_of_range(stop)
    if begin > stop:
        return CELEvalError(f"invalid substring range. start: {begin}, end: {stop}")
    return celtypes.StringType(text[begin:stop])


def trim(value: Any) -> Any:
    return celtypes.StringType(_text(value, "trim").strip(_GO_SPACE))


def join(value: Any, separator: Any = None) -> Any:
    if not isinstance(value, list):
        raise TypeError(f"no such overload: join on {type(value).__name__}")
    sep = "" if separator is None else _text(separator, "join")
    return celtypes.StringType(sep.join(_text(item, "join") for item in value))


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "charAt": char_at,
    "indexOf": index_of,
    "lastIndexOf": last_index_of,
    "lowerAscii": _ascii_case(upper=False),
    "upperAscii": _ascii_case(upper=True),
    "replace": replace,
    "split": split,
    "substring": substring,
    "trim": trim,
    "join": join,
}
