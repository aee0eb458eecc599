"""Steering actions of `kubectl rankops`: annotations the operator acts on, never a spec edit
(except ``undo``, which is a user's edit of ``spec.model`` as ``kubectl edit`` would be).

Each action checks the phase first (a clear error instead of an annotation that would be
ignored), sets its annotation, then waits for the operator's acknowledgement in status:
the consumed token (``status.last*Token``), the pause reason, or ``observedGeneration``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from rankops.cli import kubectl_api as names
from rankops.cli.kubectl_client import Client, CliError

Obj = dict[str, Any]


def _status(obj: Mapping[str, Any]) -> dict[str, Any]:
    return dict(obj.get("status") or {})


def _describe(obj: Mapping[str, Any]) -> str:
    st = _status(obj)
    name = (obj.get("metadata") or {}).get("name")
    return f"{name} is {st.get('phase', 'Unknown')}: {st.get('message') or '-'}"


def in_rollout(obj: Mapping[str, Any]) -> bool:
    st = _status(obj)
    return st.get("phase") in names.ROLLOUT_PHASES and bool(st.get("canaryVersion"))


def require(obj: Mapping[str, Any], ok: bool, what: str) -> None:
    if not ok:
        raise CliError(f"cannot {what}: {_describe(obj)}")


def wait_for(client: Client, name: str, done: Callable[[Obj], bool], timeout: float, what: str) -> Obj:
    deadline = time.monotonic() + timeout
    while True:
        obj = client.get(name)
        if done(obj):
            return obj
        if time.monotonic() >= deadline:
            raise CliError(
                f"{what}: no acknowledgement from the operator within {timeout:g}s "
                f"(is it running and does it support this action?); {_describe(obj)}",
                code=1,
            )
        time.sleep(0.2)


def token_action(client: Client, name: str, action: str, *, wait: float | None) -> Obj:
    """Set the ``action`` token; with ``wait``, return the object once the operator consumed it."""
    annotation, status_key = names.TOKENS[action]
    token = f"{time.time():.6f}"
    client.merge_patch(name, {"metadata": {"annotations": {annotation: token}}})
    print(f"{names.KIND.lower()}.{names.GROUP}/{name} annotated {annotation}={token}")
    if wait is None:
        return client.get(name)
    obj = wait_for(client, name, lambda o: _status(o).get(status_key) == token, wait, action)
    ignored = [
        e
        for e in client.events(name)
        if e.get("reason") == "AnnotationIgnored" and token in str(e.get("message") or "")
    ]
    if ignored:
        raise CliError(f"{action} ignored by the operator: {ignored[-1].get('message')}", code=1)
    return obj


def promote(client: Client, name: str, *, full: bool, wait: float | None) -> Obj:
    obj = client.get(name)
    require(obj, in_rollout(obj), "promote (no rollout in progress)")
    return token_action(client, name, "promote" if full else "promote-step", wait=wait)


def abort(client: Client, name: str, *, wait: float | None) -> Obj:
    obj = client.get(name)
    require(obj, in_rollout(obj), "abort (no rollout in progress)")
    return token_action(client, name, "abort", wait=wait)


def retry(client: Client, name: str, *, wait: float | None) -> Obj:
    obj = client.get(name)
    status = _status(obj)
    phase = status.get("phase")
    kept = (status.get("experiment") or {}).get("action") == "Kept" and status.get("abortedVersion")
    require(
        obj,
        phase in names.ENDED_BADLY or phase == "Paused" or bool(kept),
        "retry (only a RolledBack, Failed or Paused rollout, or an experiment that kept stable)",
    )
    return token_action(client, name, "retry", wait=wait)


def pause(client: Client, name: str, *, wait: float | None) -> Obj:
    obj = client.get(name)
    require(obj, in_rollout(obj), "pause (no rollout in progress)")
    client.merge_patch(name, {"metadata": {"annotations": {names.PAUSED_ANNOTATION: "true"}}})
    print(f"{names.KIND.lower()}.{names.GROUP}/{name} annotated {names.PAUSED_ANNOTATION}=true")
    if wait is None:
        return client.get(name)
    return wait_for(
        client,
        name,
        lambda o: (
            _status(o).get("phase") == "Paused" and _status(o).get("pauseReason") == names.USER_PAUSED_REASON
        ),
        wait,
        "pause",
    )


def resume(client: Client, name: str, *, wait: float | None) -> Obj:
    obj = client.get(name)
    annotated = (obj.get("metadata") or {}).get("annotations", {}).get(names.PAUSED_ANNOTATION) is not None
    require(
        obj,
        annotated,
        f"resume (not paused by {names.PAUSED_ANNOTATION}; a rollout the operator paused "
        "resumes by itself or with retry)",
    )
    client.merge_patch(name, {"metadata": {"annotations": {names.PAUSED_ANNOTATION: None}}})
    print(f"{names.KIND.lower()}.{names.GROUP}/{name} annotation {names.PAUSED_ANNOTATION} removed")
    if wait is None:
        return client.get(name)
    return wait_for(
        client, name, lambda o: _status(o).get("pauseReason") != names.USER_PAUSED_REASON, wait, "resume"
    )


def undo_target(obj: Mapping[str, Any], revision: int | None) -> Mapping[str, Any]:
    """The history entry to go back to: ``revision``, else the last good one before the stable."""
    st = _status(obj)
    good = [h for h in st.get("history") or [] if h.get("outcome") in ("Promoted", "Deployed")]
    if revision is not None:
        match = [h for h in good if h.get("revision") == revision]
        if not match:
            known = sorted({h.get("revision") for h in good})
            raise CliError(f"no promoted or deployed revision {revision} in the history (known: {known})")
        return match[-1]
    earlier = [h for h in good if h.get("version") != st.get("stableVersion")]
    if not earlier:
        raise CliError("nothing to undo: the history holds no earlier good revision")
    return earlier[-1]


def undo_uri(entry: Mapping[str, Any]) -> str:
    """The artifact URI the entry's revision served, as the operator recorded it (``uri``).

    Never guessed from another revision's URI: an entry without one (written by an operator
    before history recorded URIs) is an error that says what to do.
    """
    if entry.get("uri"):
        return str(entry["uri"])
    raise CliError(
        f"the history entry of revision {entry.get('revision')} ({entry.get('version')}) records no "
        "artifact URI (an older operator wrote it): edit spec.model by hand"
    )


def undo(client: Client, name: str, *, revision: int | None, wait: float | None) -> Obj:
    obj = client.get(name)
    entry = undo_target(obj, revision)
    uri = undo_uri(entry)
    spec_model = (obj.get("spec") or {}).get("model") or {}
    if spec_model.get("version") == entry["version"] and spec_model.get("uri") == uri:
        raise CliError(f"spec already names {entry['version']} ({uri})")
    updated = client.merge_patch(name, {"spec": {"model": {"version": entry["version"], "uri": uri}}})
    generation = int((updated.get("metadata") or {}).get("generation") or 0)
    print(
        f"{names.KIND.lower()}.{names.GROUP}/{name} spec.model set to {entry['version']} ({uri}), "
        f"revision {entry.get('revision')}; a GitOps sync will revert this unless Git changes too"
    )
    if wait is None:
        return updated
    return wait_for(
        client, name, lambda o: int(_status(o).get("observedGeneration") or 0) >= generation, wait, "undo"
    )
