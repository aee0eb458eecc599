"""The feedback side of one model server: what it showed, the feedback on it, the durable log.

``RankingService`` owns one ``FeedbackDesk``; the rules it implements (documented in the API
too):

* Feedback NDCG@3 is computed on the ids as served, from the grades the feedback maps onto
  (``rankops.serving.feedback``: judgments, clicks, 1-5 star ratings, thumbs). Ids not judged
  count as 0; the ideal DCG comes from all given grades, shown or not. Ids that are not
  catalogue items are refused (422 naming them), as are clicks on ids that were not shown.
* Every served ranking and every accepted feedback goes to the durable feedback log when one
  is configured (``rankops.serving.feedback_log``). On start the service reads back the
  requests served within ``shown_ttl_s`` and the feedback already given for this identity
  (model, version, track), so feedback for a request served before a restart is accepted
  once, and the running quality figures continue. Prometheus series start again from 0 (a
  counter reset, which ``increase()`` handles), never replaying old observations.
* Feedback top-1 relevance: the fraction of feedback requests whose top-1 served item was
  relevant, i.e. graded >= 2, or clicked in click feedback.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence

from starlette.concurrency import run_in_threadpool

from rankops.serving.artifact import ModelArtifact
from rankops.serving.cache import TTLCache
from rankops.serving.feedback import (
    FeedbackRuleError,
    feedback_grades,
    feedback_kind,
    feedback_line,
    recall_from_log,
    served_line,
    shown_of,
)
from rankops.serving.feedback_log import FeedbackLog, FeedbackLogBehind
from rankops.serving.ir_metrics import ndcg_at_k
from rankops.serving.ranking import NDCG_K, Quality, Ranking, ShownRequest
from rankops.serving.service_errors import (
    DuplicateFeedback,
    FeedbackLogUnavailable,
    InvalidFeedback,
    UnknownRequest,
)
from rankops.serving.settings import ServiceSettings
from rankops.serving.telemetry import Identity

__all__ = ["RELEVANT_GRADE", "FeedbackDesk"]

log = logging.getLogger(__name__)

RELEVANT_GRADE = 2


class FeedbackDesk:
    """The store of shown results feedback is matched against, the running quality figures
    and the feedback log (module docstring)."""

    def __init__(self, settings: ServiceSettings, clock: Callable[[], float]) -> None:
        self.settings = settings
        self.shown: TTLCache[str, ShownRequest] = TTLCache(
            settings.shown_entries, settings.shown_ttl_s, clock=clock
        )
        self.quality = Quality()
        self.log: FeedbackLog | None = None
        if settings.feedback_log:
            self.log = FeedbackLog(
                settings.feedback_log,
                flush_s=settings.feedback_log_flush_s,
                batch_records=settings.feedback_log_batch,
                max_unflushed=settings.feedback_log_max_unflushed,
            )
        self.log_problem: str | None = None  # why the log could not be read back, if it could not

    async def recall(self, identity: Identity) -> None:
        """Read back what the feedback log knows of ``identity`` (module docstring)."""
        if self.log is None:
            return
        ttl = self.settings.shown_ttl_s
        try:
            served, given = await run_in_threadpool(
                recall_from_log, self.settings.feedback_log, identity, time.time() - ttl
            )
        except Exception as exc:  # serving goes on; the gap is reported in /api/v2/health
            self.log_problem = (
                f"reading back {self.settings.feedback_log} failed: {type(exc).__name__}: {exc}"
            )
            log.warning("%s", self.log_problem)
            return
        now = time.time()
        for record in served:
            remaining = record.time + ttl - now
            if remaining > 0:
                entry = (record.ids, shown_of(record), record.query, record.domain, record.time, False)
                self.shown.put(record.request_id, entry, ttl=remaining)
        for fb in given:
            self.quality.add(fb.ndcg_at_3, fb.top1_relevant)
            entry = (fb.ids, shown_of(fb), fb.query, fb.domain, fb.served_at, True)
            remaining = fb.served_at + ttl - now
            if not self.shown.replace(fb.request_id, entry) and remaining > 0:
                self.shown.put(fb.request_id, entry, ttl=remaining)
        log.info("feedback log: %d served requests and %d feedback read back", len(served), len(given))

    def served(self, request_id: str, identity: Identity, query: str, k: int, ranking: Ranking) -> None:
        """Keep what ``request_id`` showed for its feedback, and log it."""
        served_at = time.time()
        domain = ranking.routing.predicted_domain
        self.shown.put(request_id, (ranking.ids, ranking.shown, query, domain, served_at, False))
        if self.log is not None:
            self.log.served(
                served_line(request_id, served_at, identity.json_fields, query, k, domain, ranking.shown)
            )

    def record(
        self,
        artifact: ModelArtifact,
        identity: Identity,
        request_id: str,
        judgments: Mapping[str, int] | None,
        clicks: Sequence[str] | None,
        ratings: Mapping[str, int] | None = None,
        thumbs: Mapping[str, str] | None = None,
    ) -> float:
        """Score the feedback on ``request_id`` and record it; returns the request's NDCG@3."""
        shown = self.shown.get(request_id)
        if shown is None:
            raise UnknownRequest(
                f"no served ranking with request_id {request_id!r}: it never existed or is older than "
                f"{self.settings.shown_ttl_s:g} s (or was evicted)"
            )
        ids, shown_bytes, query, domain, served_at, feedback_given = shown
        if feedback_given:
            raise DuplicateFeedback(f"feedback for request_id {request_id!r} was already recorded")
        try:
            grades = feedback_grades(
                ids,
                judgments,
                clicks,
                ratings=ratings,
                thumbs=thumbs,
                in_catalog=lambda item_id: artifact.item(item_id) is not None,
            )
        except FeedbackRuleError as exc:
            raise InvalidFeedback(str(exc)) from None
        ndcg = float(ndcg_at_k(ids, grades, NDCG_K))
        threshold = 1 if clicks is not None else RELEVANT_GRADE  # a click is grade 1
        top1_relevant = bool(ids) and grades.get(ids[0], 0) >= threshold
        if self.log is not None:
            kind, given = feedback_kind(judgments, clicks, ratings, thumbs)
            line = feedback_line(
                request_id=request_id,
                at=time.time(),
                served_at=served_at,
                identity=identity.labels(),
                query=query,
                domain=domain,
                shown=shown_bytes,
                kind=kind,
                given=given,
                grades=grades,
                ndcg=ndcg,
                top1_relevant=top1_relevant,
            )
            try:
                self.log.feedback(line)
            except FeedbackLogBehind as exc:
                raise FeedbackLogUnavailable(str(exc)) from None
        self.shown.replace(request_id, (ids, shown_bytes, query, domain, served_at, True))
        self.quality.add(ndcg, top1_relevant)
        return ndcg
