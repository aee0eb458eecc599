"""The RankingModel API names `kubectl rankops` uses: one place, read from the operator.

The group, version, plural and the annotation tokens the operator acts on come from the
operator's code; the annotations marked PROPOSED are ones the operator does not act on yet
(docs/kubectl-rankops.md says what it must add): the CLI sets them and waits for the
acknowledgement in status that the operator would write, and says so when none comes.
"""

from __future__ import annotations

from rankops.operator.api import (
    ABORT_ANNOTATION,
    GROUP,
    PROMOTE_ANNOTATION,
    RANKING_MODEL,
    RETRY_ANNOTATION,
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
    # PROPOSED: advance one step (skip the current step's remaining pause and analysis).
    "promote-step": ("rankops.dev/promote-step", "lastPromoteStepToken"),
}
# PROPOSED: while "true", a rollout holds at its current step (phase Paused, pauseReason
# UserPaused); removing it resumes. A state, not a token: GitOps can commit it.
PAUSED_ANNOTATION = "rankops.dev/paused"
USER_PAUSED_REASON = "UserPaused"

ROLLOUT_PHASES = frozenset({"Progressing", "Paused"})
ENDED_BADLY = frozenset({"RolledBack", "Failed"})
