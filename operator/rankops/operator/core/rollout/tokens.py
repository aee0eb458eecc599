"""The annotation tokens of a rollout: ``rankops.dev/promote``, ``/abort`` and ``/retry``.

Each distinct value acts once: the last consumed value of each is kept in status, so
``kubectl annotate --overwrite rm/x rankops.dev/retry=$(date +%s)`` retries once and a
GitOps-committed annotation does not act again on the next rollout.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from rankops.operator.api import ABORT_ANNOTATION, PROMOTE_ANNOTATION, RETRY_ANNOTATION

from .state import RETRYABLE_REASONS, RolloutState

__all__ = ["Tokens"]


def _token(annotations: Mapping[str, str], key: str, last: str | None) -> str | None:
    """The annotation's value when it is a token not consumed yet."""
    value = annotations.get(key)
    if value is None or value == "" or value == last:
        return None
    return str(value)


@dataclass(frozen=True)
class Tokens:
    """The tokens not consumed yet (``None``: none new)."""

    promote: str | None = None
    abort: str | None = None
    retry: str | None = None

    @classmethod
    def new(cls, annotations: Mapping[str, str] | None, state: RolloutState) -> Tokens:
        annotations = annotations or {}
        return cls(
            promote=_token(annotations, PROMOTE_ANNOTATION, state.last_promote_token),
            abort=_token(annotations, ABORT_ANNOTATION, state.last_abort_token),
            retry=_token(annotations, RETRY_ANNOTATION, state.last_retry_token),
        )

    def retries(self, state: RolloutState) -> bool:
        """Whether the retry token restarts the running rollout (only one paused for a retryable reason)."""
        return self.retry is not None and state.phase == "Paused" and state.pause_reason in RETRYABLE_REASONS

    def act_on_rollout(self, state: RolloutState) -> bool:
        """Whether a token ends or restarts the running rollout (before it is analysed further)."""
        return self.abort is not None or self.promote is not None or self.retries(state)
