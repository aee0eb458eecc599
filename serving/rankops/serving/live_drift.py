"""A serving process's live drift: the features of the distinct queries it served, judged
against the artifact's reference and exported as gauges.

Requests only note their query (``pend``: a dict insert); ``refresh`` (a periodic job on the
event loop, ``JOB_SLICE`` queries per turn) computes the features of the queries new to the
window (with the vector their request computed; only a query served from the result cache
costs an encoder pass here), and updates ``report`` (its statistics run on a
worker thread) and the ``rankops_drift_*`` gauges once the window holds ``min_samples``. The drift Job reads
``window()`` over ``GET /v1/drift/window``.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict

import numpy as np

from rankops.serving.artifact import ModelArtifact
from rankops.serving.drift import DriftMonitor, DriftReport, load_statistics, query_features
from rankops.serving.query_batcher import awaited_vectors
from rankops.serving.telemetry import ServingMetrics

__all__ = ["JOB_SLICE", "LiveDrift", "drift_gauges", "drift_tests", "query_id"]

JOB_SLICE = 8  # queries a periodic job scores per event-loop turn (a few ms)


class LiveDrift:
    def __init__(
        self, artifact: ModelArtifact, metrics: ServingMetrics, *, window: int, sample: int, min_samples: int
    ) -> None:
        self.artifact = artifact
        self.metrics = metrics
        self.monitor = DriftMonitor(artifact.reference, window=window)
        self.sample = sample
        self.min_samples = min_samples
        self.report: DriftReport | None = None
        # by normalised text: the latest ``sample`` distinct queries per refresh
        self._pending: OrderedDict[str, tuple[str, np.ndarray | None]] = OrderedDict()
        metrics.init_drift(drift_tests(artifact))

    def pend(self, key: str, query: str, vector: np.ndarray | None = None) -> None:
        """Note a served query (``key``: its normalised text) for the next refresh; ``vector``:
        the embedding its request computed, so the refresh does not encode it a second time."""
        pending = self._pending
        pending[key] = (query, vector)
        pending.move_to_end(key)
        if len(pending) > self.sample:
            pending.popitem(last=False)

    def window(self) -> tuple[list[str | None], list[dict[str, float | str]]]:
        """The window's rows, oldest first, and each one's ``query_id`` (the drift Job's key)."""
        keys, rows = self.monitor.keyed_rows()
        salt = self.artifact.sha256.encode()[:64]  # blake2b takes a key of at most 64 bytes
        return [None if key is None else query_id(key, salt) for key in keys], rows

    async def prepare(self) -> None:
        """Load the report's statistics off the loop, before the pod takes traffic."""
        await asyncio.to_thread(load_statistics)

    @property
    def observed(self) -> int:
        return self.monitor.observed

    async def refresh(self) -> None:
        queries = list(self._pending.items())
        self._pending.clear()
        for start in range(0, len(queries), JOB_SLICE):
            new = [
                (key, query, vector)
                for key, (query, vector) in queries[start : start + JOB_SLICE]
                if not self.monitor.touch(key)
            ]
            # Only a query served from the result cache comes without its vector; encoding every
            # pended one here would put up to drift_sample queries on the encoder at once every
            # drift_interval_s, ahead of the requests' own, for vectors already computed.
            unencoded = [query for _, query, vector in new if vector is None]
            encoded = iter(await awaited_vectors(self.artifact.query_batcher, unencoded))
            for key, query, vector in new:
                vector = next(encoded) if vector is None else vector
                self.monitor.observe(query_features(self.artifact, query, vector), key=key)
            await asyncio.sleep(0)  # let waiting requests in between slices
        if len(self.monitor) < self.min_samples:
            return
        # off the loop: the tests over the window take ms
        report = await asyncio.to_thread(self.monitor.report)
        self.report = report
        self.metrics.set_drift(*drift_gauges(report))


def query_id(key: str, salt: bytes) -> str:
    """A keyed digest of a normalised query, the same on every pod of one artifact.

    Why: the drift Job must count a query that two pods served once, and since the query
    batcher a row's ``max_score`` depends on the other queries in its encoder pass (float
    rounding, or int8's batch scale), so equal rows no longer mean equal queries. The text
    never leaves the pod; whoever knows the artifact digest can still test a guessed text."""
    return hashlib.blake2b(key.encode("utf-8"), digest_size=8, key=salt).hexdigest()


def drift_tests(artifact: ModelArtifact) -> dict[str, str]:
    """feature -> the test that judges it (KS for numeric features, chi-square for categories)."""
    reference = artifact.reference
    return {**dict.fromkeys(reference.numeric, "ks"), **dict.fromkeys(reference.categorical, "chi2")}


def drift_gauges(report: DriftReport) -> tuple[dict[str, float], dict[tuple[str, str], float]]:
    """The report as gauge values: PSI per feature, and the p-value per (feature, test)."""
    psi = {name: f.psi for name, f in report.features.items()}
    pvalues = {(name, f.test): f.pvalue for name, f in report.features.items()}
    return psi, pvalues
