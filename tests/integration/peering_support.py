"""Reading kopf's peering state from an operator's log (for the peering and HA tests)."""

from __future__ import annotations

from pathlib import Path


def is_active(log: Path) -> bool:
    """Whether kopf lets this operator act now: its last "Resuming operations" comes after its
    last "Pausing operations".

    kopf starts an operator paused. At start two peers may both resume for a moment (each
    before it sees the other's record: kopf peering is no lock); then the lower priority
    pauses. A peer that starts after the leader's record exists never resumes at all.
    """
    text = log.read_text(errors="replace")
    return text.rfind("Resuming operations") > text.rfind("Pausing operations")
