"""What the demo saw, as it happened: status samples, Events, act marks, and the live terminal view.

:class:`Recorder` polls one RankingModel's status and Events (from the API, as
``kubectl get rm -w`` and ``kubectl get events -w`` would), keeps every change with its
time, and prints a readable line for each (rich). The live footer shows the phase, the
versions, the canary weight and the online NDCG@3 per track over the last seconds (from
the traffic generator's judged requests). With Prometheus and Alertmanager URLs it also
polls their alerts about the model (``alerts_from``): each new state (pending and firing in
Prometheus, held by Alertmanager) is an :class:`AlertSeen` and a mark of kind ``alert``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from rankops.sandbox.alerting import alert_states
from rankops.sandbox.traffic import TrafficGenerator

__all__ = ["AlertSeen", "Mark", "Recorder", "StatusSample"]

STYLE = {
    "RolledBack": "bold red",
    "AnalysisFailed": "red",
    "Promoted": "bold green",
    "AnalysisPassed": "green",
    "StepAdvanced": "cyan",
    "RolloutStarted": "bold cyan",
}


@dataclass(frozen=True)
class StatusSample:
    at: float
    phase: str
    stable: str
    canary: str
    weight: int


@dataclass(frozen=True)
class Mark:
    at: float
    label: str
    kind: str  # "act", "event", "alert"


@dataclass(frozen=True)
class AlertSeen:
    at: float  # when the recorder first saw this state
    source: str  # "prometheus" or "alertmanager"
    alertname: str
    state: str  # pending, firing (Prometheus); active (Alertmanager)
    severity: str
    version: str
    track: str
    since: str  # Prometheus activeAt / Alertmanager startsAt (RFC 3339)


@dataclass
class Recorder:
    api: Any
    model: str
    namespace: str
    traffic: TrafficGenerator | None = None
    console: Console = field(default_factory=Console)
    live: bool = True
    poll: float = 0.2
    start: float = field(default_factory=time.time)
    samples: list[StatusSample] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    act: str = ""
    alerts_from: tuple[str | None, str | None] = (None, None)  # Prometheus, Alertmanager URLs
    alerts: list[AlertSeen] = field(default_factory=list)
    _seen: set[str] = field(default_factory=set)
    _alerts_seen: set[tuple[str, ...]] = field(default_factory=set)
    _last_alert_poll: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _live: Live | None = None

    # -- lifecycle --------------------------------------------------------------------------------

    def __enter__(self) -> Recorder:
        if self.live and self.console.is_terminal:
            self._live = Live(self._footer(), console=self.console, refresh_per_second=4, transient=True)
            self._live.__enter__()
        self._thread = threading.Thread(target=self._run, name="recorder", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.sample()
        if self._live is not None:
            self._live.__exit__(None, None, None)

    def _run(self) -> None:
        while not self._stop.wait(self.poll):
            try:
                self.sample()
                if any(self.alerts_from) and time.monotonic() - self._last_alert_poll >= 0.5:
                    self._last_alert_poll = time.monotonic()
                    self.poll_alerts()
            except Exception as exc:  # the API going away at the end is no reason to crash
                self.say(f"[dim]recorder: {exc}[/]")
            if self._live is not None:
                self._live.update(self._footer())

    # -- observations -------------------------------------------------------------------------------

    def elapsed(self, at: float | None = None) -> float:
        return (at if at is not None else time.time()) - self.start

    def say(self, text: str, at: float | None = None) -> None:
        self.console.print(f"[dim]{self.elapsed(at):6.1f}s[/] {text}", highlight=False)

    def mark(self, label: str) -> None:
        self.marks.append(Mark(time.time(), label, "act"))
        self.say(f"[bold magenta]== {label}[/]")

    def status(self) -> dict[str, Any]:
        obj = self.api.get_object("rankingmodels", self.model, self.namespace) or {}
        return dict(obj.get("status") or {})

    def sample(self) -> None:
        now = time.time()
        st = self.status()
        current = StatusSample(
            now,
            str(st.get("phase") or "-"),
            str(st.get("stableVersion") or "-"),
            str(st.get("canaryVersion") or "-"),
            int(st.get("canaryWeight") or 0),
        )
        last = self.samples[-1] if self.samples else None
        if last is None or (last.phase, last.stable, last.canary, last.weight) != (
            current.phase,
            current.stable,
            current.canary,
            current.weight,
        ):
            self.samples.append(current)
            canary = f" canary {current.canary} at {current.weight}%" if current.canary != "-" else ""
            self.say(f"phase [bold]{current.phase}[/] stable {current.stable}{canary}", now)
        for event in self.api.list_objects("events", self.namespace):
            if (event.get("involvedObject") or {}).get("name") != self.model:
                continue
            uid = event["metadata"]["uid"]
            if uid in self._seen:
                continue
            self._seen.add(uid)
            self.events.append(event)
            reason = str(event.get("reason", ""))
            self.marks.append(Mark(now, reason, "event"))
            style = STYLE.get(reason, "yellow" if event.get("type") == "Warning" else "white")
            message = str(event.get("message", ""))[:150]
            self.say(f"event [{style}]{reason}[/]: {message}", now)

    def poll_alerts(self) -> None:
        now = time.time()
        for a in alert_states(*self.alerts_from):
            if a.labels.get("rankingmodel") != self.model:
                continue
            seen = AlertSeen(
                now,
                a.source,
                a.alertname,
                a.state,
                a.labels.get("severity", ""),
                a.labels.get("version", ""),
                a.labels.get("track", ""),
                a.since,
            )
            key = (a.source, a.alertname, a.state, seen.severity, seen.version, seen.track, a.since)
            if key in self._alerts_seen:
                continue
            self._alerts_seen.add(key)
            self.alerts.append(seen)
            where = "Alertmanager holds" if a.source == "alertmanager" else f"Prometheus: {a.state}"
            label = f"{where} {a.alertname} ({seen.severity}, {seen.track} {seen.version})"
            if a.source == "alertmanager" or a.state == "firing":
                self.marks.append(Mark(now, label, "alert"))
            self.say(f"alert [bold yellow]{label}[/]", now)

    def first(self, predicate: Any, after: float = 0.0) -> StatusSample | None:
        return next((s for s in self.samples if s.at >= after and predicate(s)), None)

    def reasons(self, after: float = 0.0) -> list[str]:
        return [m.label for m in self.marks if m.kind == "event" and m.at >= after]

    def _footer(self) -> Table:
        table = Table(box=None, show_header=False, pad_edge=False)
        last = self.samples[-1] if self.samples else None
        quality = ""
        if self.traffic is not None:
            window = self.traffic.window(10)
            quality = "  ".join(f"{t} NDCG@3 {m:.3f} (n={n})" for t, (m, n) in sorted(window.items()))
        row = f"[bold]{self.act}[/]  " + (
            f"{last.phase}  stable {last.stable}  canary {last.canary} {last.weight}%" if last else "starting"
        )
        table.add_row(row)
        table.add_row(f"[dim]last 10 s:[/] {quality or 'no judged traffic yet'}")
        return table
