"""The RankingModel API names `kubectl rankops` uses: one place, read from the operator.

The group, version, plural, the annotation tokens and the pause annotation the operator acts on
come from the operator's code: the CLI sets them and waits for the acknowledgement the operator
writes in status, and says so when none comes.
"""

from __future__ import annotations

from rankops.operator.api import (
    ABORT_ANNOTATION,
    GROUP,
    PAUSED_ANNOTATION,
    PROMOTE_ANNOTATION,
    PROMOTE_STEP_ANNOTATION,
    RANKING_MODEL,
    RETRY_ANNOTATION,
    USER_PAUSED_REASON,
    VERSION,
    plural,
)

__all__ = [
    "ENDED_BADLY",
    "GROUP",
    "KIND",
    "PAUSED_ANNOTATION",
    "PLURAL",
    "ROLLOUT_PHASES",
    "TOKENS",
    "USER_PAUSED_REASON",
    "VERSION",
]

KIND = RANKING_MODEL
PLURAL = plural(RANKING_MODEL)

# Tokens: each distinct value acts once; the operator records the last consumed value in
# status (``lastPromoteToken`` etc.), which is how the CLI knows it was seen.
TOKENS = {
    "promote": (PROMOTE_ANNOTATION, "lastPromoteToken"),
    "abort": (ABORT_ANNOTATION, "lastAbortToken"),
    "retry": (RETRY_ANNOTATION, "lastRetryToken"),
    # advance one step (skip the current step's remaining pause and analysis)
    "promote-step": (PROMOTE_STEP_ANNOTATION, "lastPromoteStepToken"),
}

ROLLOUT_PHASES = frozenset({"Progressing", "Paused"})
ENDED_BADLY = frozenset({"RolledBack", "Failed"})
