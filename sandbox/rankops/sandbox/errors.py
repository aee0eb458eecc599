"""API errors rendered as ``kind: Status`` with the reasons a real API server gives."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kmock import KubernetesError

from rankops.sandbox.field_errors import FieldError

__all__ = ["ApiError", "status_body"]


class ApiError(KubernetesError):
    """An API error: ``status`` (HTTP code), ``reason`` (NotFound, Conflict...), message, details."""

    @classmethod
    def not_found(cls, group: str, plural: str, name: str) -> ApiError:
        res = f"{plural}.{group}" if group else plural
        return cls(
            404, "NotFound", f'{res} "{name}" not found', {"name": name, "group": group, "kind": plural}
        )

    @classmethod
    def not_served(cls, path: str) -> ApiError:
        return cls(
            404,
            "NotFound",
            "the server could not find the requested resource",
            {"causes": [{"reason": "UnexpectedServerResponse", "message": f"404 page not found: {path}"}]},
        )

    @classmethod
    def already_exists(cls, group: str, plural: str, name: str) -> ApiError:
        res = f"{plural}.{group}" if group else plural
        return cls(
            409,
            "AlreadyExists",
            f'{res} "{name}" already exists',
            {"name": name, "group": group, "kind": plural},
        )

    @classmethod
    def conflict(cls, group: str, plural: str, name: str, why: str) -> ApiError:
        res = f"{plural}.{group}" if group else plural
        return cls(
            409,
            "Conflict",
            f'Operation cannot be fulfilled on {res} "{name}": {why}',
            {"name": name, "group": group, "kind": plural},
        )

    @classmethod
    def invalid(cls, group: str, kind: str, name: str, errors: Sequence[FieldError]) -> ApiError:
        gk = f"{kind}.{group}" if group else kind
        joined = ", ".join(str(e) for e in errors)
        summary = f"[{joined}]" if len(errors) > 1 else joined
        return cls(
            422,
            "Invalid",
            f'{gk} "{name}" is invalid: {summary}',
            {"name": name, "group": group, "kind": kind, "causes": [e.as_cause() for e in errors]},
        )

    @classmethod
    def bad_request(cls, message: str) -> ApiError:
        return cls(400, "BadRequest", message)

    @classmethod
    def method_not_allowed(
        cls, message: str = "the server does not allow this method on the requested resource"
    ) -> ApiError:
        return cls(405, "MethodNotAllowed", message)

    @classmethod
    def unsupported_media_type(cls, content_type: str) -> ApiError:
        return cls(
            415,
            "UnsupportedMediaType",
            f"the body of the request was in an unknown format - "
            f"accepted media types include: application/json-patch+json, application/merge-patch+json,"
            f" application/apply-patch+yaml, application/strategic-merge-patch+json (got {content_type})",
        )

    @classmethod
    def gone(cls, rv: str) -> ApiError:
        return cls(410, "Expired", f"too old resource version: {rv}")

    @classmethod
    def forbidden(cls, message: str) -> ApiError:
        return cls(403, "Forbidden", message)


def status_body(exc: KubernetesError) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": exc.message or "",
        "reason": exc.reason or "",
        "code": exc.status,
    }
    if exc.details:
        body["details"] = exc.details
    return body
