"""Kubernetes access for `kubectl rankops`: the official client, kubeconfig as kubectl reads it.

``KUBECONFIG``, ``--kubeconfig`` and ``--context`` as kubectl; in a pod, the service account.
Requests say ``User-Agent: kubectl-rankops/<version>``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Generator
from typing import Any

from rankops.cli import kubectl_api as names

USER_AGENT = "kubectl-rankops/0.1.0"


class CliError(Exception):
    """A user-facing failure: one line on stderr, exit status 2 (``code`` overrides)."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


@dataclasses.dataclass
class Client:
    custom: Any
    core: Any
    namespace: str

    @classmethod
    def connect(
        cls, kubeconfig: str | None = None, context: str | None = None, namespace: str | None = None
    ) -> Client:
        import kubernetes

        kube: Any = kubernetes  # untyped library
        client, config = kube.client, kube.config
        default_ns = "default"
        try:
            api_client = config.new_client_from_config(config_file=kubeconfig, context=context)
            _, active = config.list_kube_config_contexts(config_file=kubeconfig)
            if context:
                contexts, _ = config.list_kube_config_contexts(config_file=kubeconfig)
                active = next((c for c in contexts if c["name"] == context), active)
            default_ns = (active or {}).get("context", {}).get("namespace") or "default"
        except config.ConfigException as exc:
            try:
                config.load_incluster_config()
            except config.ConfigException:
                raise CliError(f"no Kubernetes credentials: {exc}") from exc
            api_client = client.ApiClient()
            try:
                with open("/var/run/secrets/kubernetes.io/serviceaccount/namespace") as f:
                    default_ns = f.read().strip() or default_ns
            except OSError:
                pass
        api_client.user_agent = USER_AGENT
        return cls(client.CustomObjectsApi(api_client), client.CoreV1Api(api_client), namespace or default_ns)

    def _call(self, fn: Any, *args: Any, name: str | None = None, **kwargs: Any) -> Any:
        from kubernetes.client.exceptions import ApiException

        try:
            return fn(*args, **kwargs)
        except ApiException as exc:
            if exc.status == 404 and name:
                raise CliError(f"{names.KIND} {self.namespace}/{name} not found") from None
            raise CliError(f"API error {exc.status}: {_message(exc)}") from None
        except OSError as exc:  # urllib3 wraps connection failures in OSError subclasses
            raise CliError(f"cannot reach the API server: {exc}") from None

    def get(self, name: str) -> dict[str, Any]:
        obj: dict[str, Any] = self._call(
            self.custom.get_namespaced_custom_object,
            names.GROUP,
            names.VERSION,
            self.namespace,
            names.PLURAL,
            name,
            name=name,
        )
        return obj

    def list_models(self) -> list[dict[str, Any]]:
        result = self._call(
            self.custom.list_namespaced_custom_object,
            names.GROUP,
            names.VERSION,
            self.namespace,
            names.PLURAL,
        )
        return list(result.get("items") or [])

    def merge_patch(self, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        obj: dict[str, Any] = self._call(
            self.custom.patch_namespaced_custom_object,
            names.GROUP,
            names.VERSION,
            self.namespace,
            names.PLURAL,
            name,
            patch,
            name=name,
        )
        return obj

    def events(self, name: str) -> list[dict[str, Any]]:
        result = self._call(self.core.list_namespaced_event, self.namespace)
        items = result.to_dict().get("items") or []
        return [e for e in items if (e.get("involved_object") or {}).get("name") == name]

    def watch(
        self, name: str, resource_version: str, timeout: float
    ) -> Generator[dict[str, Any], None, None]:
        """The object's changes after ``resource_version`` for at most ``timeout`` seconds."""
        import kubernetes
        from kubernetes.client.exceptions import ApiException

        kube: Any = kubernetes  # untyped library
        stream = kube.watch.Watch()
        try:
            for event in stream.stream(
                self.custom.list_namespaced_custom_object,
                names.GROUP,
                names.VERSION,
                self.namespace,
                names.PLURAL,
                field_selector=f"metadata.name={name}",
                resource_version=resource_version,
                timeout_seconds=max(1, int(timeout)),
                _request_timeout=timeout + 5,
            ):
                if event["type"] == "DELETED":
                    raise CliError(f"{names.KIND} {self.namespace}/{name} was deleted")
                if event["type"] in ("ADDED", "MODIFIED"):
                    yield event["object"]
        except ApiException as exc:
            if exc.status == 410:  # expired resourceVersion: the caller re-reads the object
                return
            raise CliError(f"API error {exc.status}: {_message(exc)}") from None
        finally:
            stream.stop()


def _message(exc: Any) -> str:
    import json

    try:
        return str(json.loads(exc.body).get("message") or exc.reason)
    except (TypeError, ValueError, AttributeError):
        return str(exc.reason)
