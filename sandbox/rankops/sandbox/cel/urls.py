"""The Kubernetes CEL URL library (``k8s.io/apiserver/pkg/cel/library/urls.go``).

``url(s)`` accepts what Go's ``url.ParseRequestURI`` accepts (an absolute URI or an
absolute path; the library then re-parses with ``url.Parse`` to split the fragment off);
``isURL(s)``; accessors ``getScheme``, ``getHost``, ``getHostname``, ``getPort``,
``getEscapedPath``, ``getQuery``. The parser follows Go's ``net/url`` rules for what it
rejects (control characters, bad percent escapes, bad ports, unbracketed IPv6, characters
not allowed in a host); Go's finer rules for user info are not reproduced.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, unquote_plus

from celpy import celtypes
from celpy.evaluation import CELEvalError

__all__ = ["FUNCTIONS", "URL", "parse_request_uri"]

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*$")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
# Characters Go's net/url leaves unescaped in a path (shouldEscape with encodePath).
_PATH_SAFE = "-_.~$&+,/:;=@"
# Characters Go accepts verbatim in an already-escaped path (validEncoded).
_VALID_ENCODED = re.compile(r"^[A-Za-z0-9\-_.~!$&'()*+,;=:@\[\]/%]*$")
_HOST_CHARS = re.compile(r"^[A-Za-z0-9\-_.~!$&'()*+,;=:\[\]<>\"%]*$")


@dataclass(frozen=True)
class URL:
    """A parsed URL, the value ``url()`` returns."""

    scheme: str
    host: str
    raw_path: str
    raw_query: str
    opaque: str = ""

    def __str__(self) -> str:
        return f"url({self.scheme}://{self.host}{self.raw_path})"


class URLError(ValueError):
    pass


def _check_host(host: str) -> None:
    if host.startswith("["):
        close = host.find("]")
        if close < 0:
            raise URLError("missing ']' in host")
        port = host[close + 1 :]
        if port and not re.fullmatch(r":[0-9]*", port):
            raise URLError(f'invalid port "{port}" after host')
        return
    if ":" in host:
        port = host.rpartition(":")[2]
        if not re.fullmatch(r"[0-9]*", port):
            raise URLError(f'invalid port ":{port}" after host')
    bad = _BAD_ESCAPE.search(host)
    if bad:
        raise URLError(f'invalid URL escape "{host[bad.start() :][:3]}"')
    for char in host:
        if not _HOST_CHARS.match(char) and ord(char) < 0x80:
            raise URLError(f"invalid character {json.dumps(char)} in host name")


def parse_request_uri(text: str) -> URL:
    """Go's ``url.ParseRequestURI`` then ``url.Parse`` (for the fragment); raises URLError."""
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise URLError("net/url: invalid control character in URL")
    if text == "":
        raise URLError("empty url")
    rest = text
    scheme = ""
    colon = rest.find(":")
    if colon == 0:
        raise URLError("missing protocol scheme")
    if colon > 0 and _SCHEME.match(rest[:colon]):
        scheme, rest = rest[:colon].lower(), rest[colon + 1 :]
    rest = rest.split("#", 1)[0]
    rest, _, query = rest.partition("?")
    if not rest.startswith("/"):
        if scheme:
            return URL(scheme, "", "", query, opaque=rest)
        raise URLError("invalid URI for request")
    host = ""
    if scheme and rest.startswith("//"):
        authority, slash, path = rest[2:].partition("/")
        rest = slash + path
        host = authority.rpartition("@")[2]
        _check_host(host)
    bad = _BAD_ESCAPE.search(rest)
    if bad:
        raise URLError(f'invalid URL escape "{rest[bad.start() :][:3]}"')
    return URL(scheme, host, rest, query)


def _url(value: Any) -> Any:
    if not isinstance(value, str):
        raise TypeError("no such overload: url")
    try:
        return parse_request_uri(value)
    except URLError as exc:
        return CELEvalError(
            f"URL parse error during conversion from string: parse {json.dumps(str(value))}: {exc}"
        )


def _is_url(value: Any) -> Any:
    if not isinstance(value, str):
        raise TypeError("no such overload: isURL")
    try:
        parse_request_uri(value)
    except URLError:
        return celtypes.BoolType(False)
    return celtypes.BoolType(True)


def _accessor(name: str, read: Callable[[URL], Any]) -> Callable[[Any], Any]:
    def access(value: Any) -> Any:
        if not isinstance(value, URL):
            raise TypeError(f"no such overload: {name}")
        return read(value)

    access.__name__ = name
    return access


def _hostname(url: URL) -> str:
    host = url.host
    if host.startswith("["):
        return host[1 : host.find("]")]
    return host.rpartition(":")[0] if ":" in host else host


def _port(url: URL) -> str:
    host = url.host
    if host.startswith("["):
        host = host[host.find("]") + 1 :]
    return host.rpartition(":")[2] if ":" in host else ""


def _escaped_path(url: URL) -> str:
    if _VALID_ENCODED.match(url.raw_path):
        return url.raw_path
    return quote(unquote(url.raw_path), safe=_PATH_SAFE)


def _query(url: URL) -> celtypes.MapType:
    """Go's ``url.Query()``: pairs split on '&'; pairs with a ';' or a bad escape are dropped."""
    result: dict[str, list[str]] = {}
    for pair in url.raw_query.split("&"):
        if not pair or ";" in pair:
            continue
        key, _, val = pair.partition("=")
        if _BAD_ESCAPE.search(key) or _BAD_ESCAPE.search(val):
            continue
        result.setdefault(unquote_plus(key), []).append(unquote_plus(val))
    return celtypes.MapType(
        {
            celtypes.StringType(k): celtypes.ListType([celtypes.StringType(v) for v in vals])
            for k, vals in result.items()
        }
    )


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "url": _url,
    "isURL": _is_url,
    "getScheme": _accessor("getScheme", lambda u: celtypes.StringType(u.scheme)),
    "getHost": _accessor("getHost", lambda u: celtypes.StringType(u.host)),
    "getHostname": _accessor("getHostname", lambda u: celtypes.StringType(_hostname(u))),
    "getPort": _accessor("getPort", lambda u: celtypes.StringType(_port(u))),
    "getEscapedPath": _accessor("getEscapedPath", lambda u: celtypes.StringType(_escaped_path(u))),
    "getQuery": _accessor("getQuery", _query),
}
