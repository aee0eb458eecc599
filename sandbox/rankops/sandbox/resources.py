"""Requests on resource paths: list, get, watch, create, replace, patch, delete, with the
validating admission chain (:mod:`rankops.sandbox.admission`) before every write."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp.web
import yaml
from kmock._internal import rendering  # Request: kmock 0.8 internals (pinned <0.9)

from rankops.sandbox.admission import ValidatingAdmission
from rankops.sandbox.errors import ApiError
from rankops.sandbox.paths import Path
from rankops.sandbox.registry import ResourceType
from rankops.sandbox.semantics import Cluster
from rankops.sandbox.tables import build_table
from rankops.sandbox.watching import serve_watch

__all__ = ["ResourceRequests"]

# A write reviewed again this often when its object keeps changing under the webhooks.
_ADMISSION_ATTEMPTS = 5


class ResourceRequests:
    """Serves resource requests for an emulated API server."""

    def __init__(
        self,
        cluster: Cluster,
        admission: ValidatingAdmission,
        respond: Callable[..., aiohttp.web.Response],
        closing: Callable[[], bool],
    ) -> None:
        self.cluster = cluster
        self.admission = admission
        self.respond = respond  # (payload, status=200): JSON with the pending Warning headers
        self.closing = closing

    async def serve(self, request: rendering.Request, method: str, p: Path) -> aiohttp.web.StreamResponse:
        """One request on a resource path (``p.plural`` set): reads, watches and writes."""
        assert p.group is not None and p.version is not None and p.plural is not None
        rt = self.cluster.types.get((p.group, p.version, p.plural))
        if rt is None:
            raise ApiError.not_served(request.url.path)
        if p.namespace is not None and not rt.namespaced:
            raise ApiError.not_served(request.url.path)
        if p.subresource and (p.subresource not in rt.subresources or p.name is None):
            raise ApiError.not_served(request.url.path)
        params = dict(request.params)
        ns = p.namespace
        if rt.namespaced and ns is None and (p.name is not None or method == "POST"):
            raise ApiError.not_served(request.url.path)
        accept = request.headers.get("Accept", "")
        as_table = "as=Table" in accept

        if method == "GET":
            if params.get("watch") in ("true", "1"):
                if p.name is not None:
                    sel = params.get("fieldSelector")
                    params["fieldSelector"] = f"metadata.name={p.name}" + (f",{sel}" if sel else "")
                return await serve_watch(self.cluster, request, rt, ns, params, as_table, self.closing)
            if p.name is None:
                items, list_meta = self._paginate(self.cluster.list(rt, ns, params), params)
                if as_table:
                    table = build_table(
                        items,
                        rt.printer_columns,
                        str(self.cluster.store.rv),
                        params.get("includeObject", "Metadata"),
                    )
                    table["metadata"].update(list_meta)
                    return self.respond(table)
                return self.respond(
                    {
                        "kind": f"{rt.kind}List",
                        "apiVersion": rt.api_version,
                        "metadata": {"resourceVersion": str(self.cluster.store.rv), **list_meta},
                        "items": items,
                    }
                )
            obj = self.cluster.get(rt, ns, p.name)
            if p.subresource == "scale":
                return self.respond(self.cluster.scale_of(rt, obj))
            if as_table:
                return self.respond(
                    build_table(
                        [obj],
                        rt.printer_columns,
                        str(self.cluster.store.rv),
                        params.get("includeObject", "Metadata"),
                    )
                )
            return self.respond(obj)

        body = self._parse_body(request)
        self.cluster.warnings.clear()
        if method == "POST":
            if p.name is not None:
                raise ApiError.method_not_allowed()
            if not isinstance(body, dict):
                raise ApiError.bad_request("the body of the request must be a JSON object")
            name = str((body.get("metadata") or {}).get("name") or "")
            created = await self._admitted(
                rt, ns, name, None, params, lambda prm: self.cluster.create(rt, ns, copy.deepcopy(body), prm)
            )
            return self.respond(created, 201)
        if method == "PUT":
            if p.name is None:
                raise ApiError.method_not_allowed()
            if not isinstance(body, dict):
                raise ApiError.bad_request("the body of the request must be a JSON object")
            name, sub = p.name, p.subresource
            if sub == "scale":
                return self.respond(
                    await self._admitted(
                        rt,
                        ns,
                        name,
                        sub,
                        params,
                        lambda prm: self.cluster.write_scale(rt, ns, name, copy.deepcopy(body), prm),
                    )
                )
            return self.respond(
                await self._admitted(
                    rt,
                    ns,
                    name,
                    sub,
                    params,
                    lambda prm: self.cluster.update(rt, ns, name, copy.deepcopy(body), sub, prm),
                )
            )
        if method == "PATCH":
            if p.name is None:
                raise ApiError.method_not_allowed()
            content_type = request.headers.get("Content-Type", "").split(";")[0].strip()
            name, sub, text = p.name, p.subresource, request.text
            existed = self.cluster.store.get(self.cluster.key(rt, ns, name)) is not None
            obj = await self._admitted(
                rt,
                ns,
                name,
                sub,
                params,
                lambda prm: self.cluster.patch(rt, ns, name, content_type, text, sub, prm),
            )
            return self.respond(obj, 200 if existed else 201)  # 201: server-side apply created it
        if method == "DELETE":
            options = body if isinstance(body, dict) else {}
            for k in ("propagationPolicy", "gracePeriodSeconds"):
                if k in params:
                    options.setdefault(k, params[k])
            if p.name is None:
                return self.respond(self.cluster.delete_collection(rt, ns, params, options))
            dry_run = "dryRun" in params
            await self._admit_delete(rt, ns, p.name, p.subresource, dry_run)
            return self.respond(self.cluster.delete(rt, ns, p.name, options, dry_run=dry_run))
        raise ApiError.method_not_allowed()

    # -- admission -------------------------------------------------------------------------------

    async def _admitted(
        self,
        rt: ResourceType,
        ns: str | None,
        name: str,
        subresource: str | None,
        params: Mapping[str, str],
        write: Callable[[Mapping[str, str]], dict[str, Any]],
    ) -> dict[str, Any]:
        """Run ``write`` once the validating webhooks admit the object it would store.

        As a real server does, the object the webhooks see is the one the write would store
        (defaulted, pruned, validated: here a dry run of the same write); when the stored object
        changes while they are asked, the write is prepared and reviewed again.
        """
        key = self.cluster.key(rt, ns, name) if name else None
        for _ in range(_ADMISSION_ATTEMPTS):
            stored = self.cluster.store.get(key) if key else None
            operation = "UPDATE" if stored is not None else "CREATE"
            hooks = self.admission.webhooks(rt, subresource, operation)
            if not hooks:
                return write(params)
            old = self.cluster.present(rt, stored) if stored is not None else None
            preview = write({**params, "dryRun": "All"})
            if subresource is None:
                name = preview["metadata"]["name"]  # generateName: the name the dry run chose
            self.cluster.warnings += await self.admission.review(
                hooks,
                rt=rt,
                operation=operation,
                namespace=ns,
                name=name,
                obj=preview,
                old=old,
                subresource=subresource,
                dry_run="dryRun" in params,
            )
            if key is None or _version(self.cluster.store.get(key)) == _version(stored):
                return write(params)  # nothing changed while the webhooks were asked
        raise ApiError.conflict(
            rt.group, rt.plural, name, "the object kept changing while admission webhooks were asked"
        )

    async def _admit_delete(
        self, rt: ResourceType, ns: str | None, name: str, subresource: str | None, dry_run: bool
    ) -> None:
        hooks = self.admission.webhooks(rt, subresource, "DELETE")
        stored = self.cluster.store.get(self.cluster.key(rt, ns, name))
        if hooks and stored is not None:
            await self.admission.review(
                hooks,
                rt=rt,
                operation="DELETE",
                namespace=ns,
                name=name,
                obj=None,
                old=self.cluster.present(rt, stored),
                subresource=subresource,
                dry_run=dry_run,
            )

    @staticmethod
    def _paginate(
        items: list[dict[str, Any]], params: Mapping[str, str]
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """``limit``/``continue``: pages in (namespace, name) order.

        DIFFERENCE: a continued list shows the objects as they are now, not as a snapshot at
        the first page's resourceVersion, and continue tokens never expire (no 410).
        """
        start = 0
        token = params.get("continue")
        if token:
            try:
                last = json.loads(base64.urlsafe_b64decode(token.encode()).decode())
            except ValueError as exc:
                raise ApiError.bad_request(f"continue key is not valid: {exc}") from exc
            keys = [[i["metadata"].get("namespace", ""), i["metadata"]["name"]] for i in items]
            start = next((n for n, key in enumerate(keys) if key > last), len(items))
        try:
            limit = int(params.get("limit") or 0)
        except ValueError as exc:
            raise ApiError.bad_request(f"invalid limit: {exc}") from exc
        page = items[start : start + limit] if limit > 0 else items[start:]
        meta: dict[str, Any] = {}
        remaining = len(items) - start - len(page)
        if remaining > 0 and page:
            last_meta = page[-1]["metadata"]
            key = json.dumps([last_meta.get("namespace", ""), last_meta["name"]])
            meta["continue"] = base64.urlsafe_b64encode(key.encode()).decode()
            meta["remainingItemCount"] = remaining
        return page, meta

    @staticmethod
    def _parse_body(request: rendering.Request) -> Any:
        if request.data is not None:
            return request.data
        if not request.text.strip():
            return None
        try:
            return yaml.safe_load(request.text)
        except yaml.YAMLError as exc:
            raise ApiError.bad_request(f"the body of the request could not be decoded: {exc}") from exc


def _version(obj: Mapping[str, Any] | None) -> str | None:
    return None if obj is None else (obj.get("metadata") or {}).get("resourceVersion")
