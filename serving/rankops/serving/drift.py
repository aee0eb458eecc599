"""Drift of live queries against the training queries.

Features of one query (``query_features``):
    n_tokens      number of word tokens
    n_chars       length in characters
    oov_fraction  share of tokens not in the training vocabulary (catalogue + training queries)
    max_score     the model's best score over the catalogue
    domain        predicted domain (categorical)
    region        region named in the query, or "none" (categorical)

Reference (``DriftReference``, saved as ``reference_stats.json``), computed by ``rankops train``:
the model-dependent features (``MODEL_DEPENDENT_FEATURES``: ``max_score``, ``oov_fraction`` and
the predicted ``domain``) from held-out queries (the dev split; the train split only when there
is no dev split): on the queries a model was fitted to, ``max_score`` is inflated,
``oov_fraction`` is 0 by construction and the domain head predicts the domains it was taught
(on the bundled data it calls 62% of training queries "transport" against 77-82% of dev, test
and live ones), so a reference taken from them flags ordinary live traffic as drift. The
features of the query alone (lengths, region) from the queries of every split: a reference of
~100 queries is so noisy that a check repeated daily against it raises false alarms most days
(``build_mixed``).
    numeric:      a sample of at most 2,000 reference values (for KS), PSI bin edges (reference
                  deciles, deduplicated; bins are (-inf, e1], (e1, e2], ..., (ek, inf)) and the
                  reference fraction per bin
    categorical:  category frequencies and the reference count

Tests (``DriftMonitor.report``):
    PSI = sum_i (a_i - e_i) * ln(a_i / e_i) over bins (numeric) or categories (categorical),
          with fractions floored at epsilon = 1e-4 (so an empty bin contributes a finite amount);
          on categories both sides' counts get Jeffreys' pseudo-count 1/2 first, since a
          category a reference of ~100 held-out queries missed (a 1% domain, one time in three)
          is rare, not impossible, and flooring it at 1e-4 turned a handful of live queries into
          PSI > 0.25.
          Rule of thumb: < 0.1 stable, 0.1-0.25 moderate, > 0.25 major shift.
    KS    scipy.stats.ks_2samp(reference sample, window) p-value (numeric features).
    chi2  Pearson's chi-square test of homogeneity (scipy.stats.chi2_contingency) of the
          reference counts against the window's counts over the union of their categories:
          the reference is a sample too (about a hundred held-out queries), so treating its
          frequencies as exact would flag any category it happened not to see (categorical
          features).
"""

from __future__ import annotations

import importlib
import math
import threading
from collections import Counter, OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from rankops.serving.features import tokenize

if TYPE_CHECKING:
    from rankops.serving.artifact import ModelArtifact

NUMERIC_FEATURES = ("n_tokens", "n_chars", "oov_fraction", "max_score")
# Features whose values on the queries a model was fitted to are biased (see the module doc).
MODEL_DEPENDENT_FEATURES = ("oov_fraction", "max_score", "domain")
CATEGORICAL_FEATURES = ("domain", "region")
PSI_EPSILON = 1e-4
# A category a reference of ~100 held-out queries did not happen to see is rare, not
# impossible: PSI on categories adds this to every count on both sides (see the module doc).
CATEGORY_PSEUDO_COUNT = 0.5
MAX_SAMPLE = 2000
PSI_BINS = 10


def query_features(
    artifact: ModelArtifact, query: str, query_embedding: np.ndarray | None = None
) -> dict[str, float | str]:
    """The features of one query, as the serving path computes them (``query_embedding``:
    as for ``ModelArtifact.analyze``)."""
    analysis = artifact.analyze(query, k=0, query_embedding=query_embedding)
    return _feature_row(artifact, query, analysis.max_score, analysis.domain)


def query_features_many(
    artifact: ModelArtifact, queries: Sequence[str], batch_size: int = 256
) -> list[dict[str, float | str]]:
    """``query_features`` of many queries in batched passes (a reference's or a test's
    thousands: one encoder call per query costs several times more)."""
    domains = artifact.config.domains
    out: list[dict[str, float | str]] = []
    for start in range(0, len(queries), batch_size):
        chunk = list(queries[start : start + batch_size])
        scores, probabilities = artifact.ranker.infer(chunk)
        best = scores.max(dim=1).values.tolist() if scores.shape[1] else [0.0] * len(chunk)
        predicted = probabilities.argmax(dim=1).tolist()
        for query, max_score, d in zip(chunk, best, predicted, strict=True):
            out.append(_feature_row(artifact, query, float(max_score), domains[d] if domains else ""))
    return out


def _feature_row(
    artifact: ModelArtifact, query: str, max_score: float, domain: str
) -> dict[str, float | str]:
    tokens = tokenize(query)
    vocab = artifact.reference.vocabulary
    oov = sum(1 for t in tokens if t not in vocab) / len(tokens) if tokens else 0.0
    return {
        "n_tokens": float(len(tokens)),
        "n_chars": float(len(query)),
        "oov_fraction": float(oov),
        "max_score": float(max_score),
        "domain": domain,
        "region": artifact.detect_region(query) or "none",
    }


@dataclass
class NumericReference:
    sample: list[float]
    edges: list[float]
    fractions: list[float]

    def bin_counts(self, values: np.ndarray) -> np.ndarray:
        idx = np.searchsorted(np.asarray(self.edges), values, side="left")
        return np.bincount(idx, minlength=len(self.edges) + 1)


@dataclass
class CategoricalReference:
    frequencies: dict[str, float]
    count: int


@dataclass
class DriftReference:
    numeric: dict[str, NumericReference] = field(default_factory=dict)
    categorical: dict[str, CategoricalReference] = field(default_factory=dict)
    vocabulary: frozenset[str] = frozenset()
    n_queries: int = 0

    @classmethod
    def build(
        cls, rows: Sequence[Mapping[str, float | str]], vocabulary: Iterable[str] = (), seed: int = 0
    ) -> DriftReference:
        rng = np.random.default_rng(seed)
        numeric: dict[str, NumericReference] = {}
        categorical: dict[str, CategoricalReference] = {}
        names = list(rows[0]) if rows else []
        for name in names:
            values = [r[name] for r in rows]
            if all(isinstance(v, (int, float)) for v in values):
                arr = np.asarray(values, dtype=np.float64)
                qs = np.quantile(arr, np.linspace(0, 1, PSI_BINS + 1)[1:-1])
                edges = sorted({float(q) for q in qs})
                counts = np.searchsorted(np.asarray(edges), arr, side="left")
                fractions = np.bincount(counts, minlength=len(edges) + 1) / len(arr)
                sample = arr if len(arr) <= MAX_SAMPLE else rng.choice(arr, MAX_SAMPLE, replace=False)
                numeric[name] = NumericReference(
                    [float(x) for x in sample], edges, [float(f) for f in fractions]
                )
            else:
                counts_c = Counter(str(v) for v in values)
                categorical[name] = CategoricalReference(
                    {k: n / len(values) for k, n in sorted(counts_c.items())}, len(values)
                )
        return cls(numeric, categorical, frozenset(vocabulary), len(rows))

    @classmethod
    def build_mixed(
        cls,
        heldout_rows: Sequence[Mapping[str, float | str]],
        all_rows: Sequence[Mapping[str, float | str]],
        vocabulary: Iterable[str] = (),
        seed: int = 0,
    ) -> DriftReference:
        """Model-dependent features from held-out queries only, the others from all queries."""
        heldout = cls.build(heldout_rows, vocabulary, seed=seed)
        everything = cls.build(all_rows, vocabulary, seed=seed)
        for name in MODEL_DEPENDENT_FEATURES:
            if name in heldout.numeric:
                everything.numeric[name] = heldout.numeric[name]
            if name in heldout.categorical:
                everything.categorical[name] = heldout.categorical[name]
        everything.n_queries = len(all_rows)
        return everything

    def to_json(self) -> dict[str, Any]:
        return {
            "format": 1,
            "n_queries": self.n_queries,
            "psi_epsilon": PSI_EPSILON,
            "numeric": {
                k: {"sample": v.sample, "edges": v.edges, "fractions": v.fractions}
                for k, v in sorted(self.numeric.items())
            },
            "categorical": {
                k: {"frequencies": v.frequencies, "count": v.count}
                for k, v in sorted(self.categorical.items())
            },
            "vocabulary": sorted(self.vocabulary),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DriftReference:
        return cls(
            numeric={
                k: NumericReference(
                    [float(x) for x in v["sample"]],
                    [float(x) for x in v["edges"]],
                    [float(x) for x in v["fractions"]],
                )
                for k, v in data.get("numeric", {}).items()
            },
            categorical={
                k: CategoricalReference(
                    {str(c): float(f) for c, f in v["frequencies"].items()}, int(v["count"])
                )
                for k, v in data.get("categorical", {}).items()
            },
            vocabulary=frozenset(data.get("vocabulary", [])),
            n_queries=int(data.get("n_queries", 0)),
        )


def psi(
    expected: Sequence[float] | np.ndarray, actual: Sequence[float] | np.ndarray, epsilon: float = PSI_EPSILON
) -> float:
    e = np.maximum(np.asarray(expected, dtype=np.float64), epsilon)
    a = np.maximum(np.asarray(actual, dtype=np.float64), epsilon)
    return float(np.sum((a - e) * np.log(a / e)))


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    kind: str  # "numeric" | "categorical"
    psi: float
    test: str  # "ks" | "chi2"
    pvalue: float
    n: int
    statistic: float = math.nan  # KS D or the chi-square statistic


@dataclass(frozen=True)
class DriftReport:
    n: int
    features: dict[str, FeatureDrift]

    @property
    def max_psi(self) -> float:
        return max((f.psi for f in self.features.values()), default=0.0)

    @property
    def min_pvalue(self) -> float:
        return min((f.pvalue for f in self.features.values()), default=1.0)

    def drifted(self, psi_threshold: float = 0.25, alpha: float = 0.01) -> list[str]:
        return sorted(k for k, f in self.features.items() if f.psi > psi_threshold or f.pvalue < alpha)

    def to_json(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "features": {
                k: {"kind": f.kind, "psi": f.psi, "test": f.test, "pvalue": f.pvalue}
                for k, f in sorted(self.features.items())
            },
        }


def load_statistics() -> None:
    """Import what the tests run on (scipy.stats, ~0.4-0.7 s) now rather than at the first
    report. Not at this module's import: a Job or CLI that runs no test need not pay for it.
    A serving pod calls it before it is ready (``LiveDrift.prepare``), since an import holds
    the GIL the event loop needs: under traffic the first report's import stalled requests."""
    importlib.import_module("scipy.stats")


def chi2_homogeneity(reference_counts: np.ndarray, observed_counts: np.ndarray) -> tuple[float, float]:
    """(p-value, statistic) of Pearson's chi-square test that two count vectors over the same
    categories come from one distribution. Both are samples: the reference's own sampling
    noise counts too, so a category the reference never saw is not an automatic alarm."""
    from scipy import stats  # here, not at import: load_statistics says why

    table = np.vstack([reference_counts, observed_counts])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or table[0].sum() == 0 or table[1].sum() == 0:
        return 1.0, 0.0
    result = stats.chi2_contingency(table, correction=False)
    p = float(result.pvalue)
    return (p if math.isfinite(p) else 1.0), float(result.statistic)


def _smoothed(counts: np.ndarray) -> np.ndarray:
    """Category fractions with Jeffreys' pseudo-count (1/2) added to every category."""
    return (counts + CATEGORY_PSEUDO_COUNT) / (counts.sum() + CATEGORY_PSEUDO_COUNT * len(counts))


def compare(reference: DriftReference, rows: Sequence[Mapping[str, float | str]]) -> DriftReport:
    """Drift statistics of observed feature rows against the reference (pure function)."""
    from scipy import stats  # see chi2_homogeneity

    out: dict[str, FeatureDrift] = {}
    n = len(rows)
    if n == 0:
        return DriftReport(0, {})
    for name, ref in reference.numeric.items():
        vals = np.asarray([float(r[name]) for r in rows if name in r], dtype=np.float64)
        vals = vals[np.isfinite(vals)]
        if len(vals) == 0:
            continue
        actual = ref.bin_counts(vals) / len(vals)
        ks = stats.ks_2samp(np.asarray(ref.sample), vals) if ref.sample else None
        p, d = (float(ks.pvalue), float(ks.statistic)) if ks is not None else (1.0, 0.0)
        out[name] = FeatureDrift(name, "numeric", psi(ref.fractions, actual), "ks", p, len(vals), d)
    for name, cref in reference.categorical.items():
        obs = Counter(str(r[name]) for r in rows if name in r)
        m = sum(obs.values())
        if m == 0:
            continue
        cats = sorted(set(cref.frequencies) | set(obs))
        ref_counts = np.asarray([cref.frequencies.get(c, 0.0) * cref.count for c in cats])
        f_obs = np.asarray([obs.get(c, 0) for c in cats], dtype=np.float64)
        p, x2 = chi2_homogeneity(ref_counts, f_obs)
        ps = psi(_smoothed(ref_counts), _smoothed(f_obs))
        out[name] = FeatureDrift(name, "categorical", ps, "chi2", p, m, x2)
    return DriftReport(n, out)


class DriftMonitor:
    """Rolling window of the live features of the last ``window`` distinct queries; thread-safe.

    Distinct, because the reference is a sample of distinct queries: live traffic repeats its
    head queries, and a window holding one query many times is not an independent sample, so
    KS and chi-square would find "drift" in mere repetition (200 draws with replacement from
    112 held-out queries drifted on every trial; the 112 themselves did not). A repeated query
    (``key``: its normalised text) moves to the newest end of the window instead of adding a row;
    ``key=None`` always adds one."""

    def __init__(self, reference: DriftReference, window: int = 1000) -> None:
        if window <= 0:
            raise ValueError("window must be positive")
        self.reference = reference
        self.window = window
        self._rows: OrderedDict[object, dict[str, float | str]] = OrderedDict()
        self._lock = threading.Lock()
        self._observed = 0

    def observe(self, features: Mapping[str, float | str], key: str | None = None) -> None:
        with self._lock:
            self._observed += 1
            slot: object = key if key is not None else object()
            if slot in self._rows:
                self._rows.move_to_end(slot)
            self._rows[slot] = dict(features)
            while len(self._rows) > self.window:
                self._rows.popitem(last=False)

    def touch(self, key: str) -> bool:
        """Count a repeat of ``key`` (moving it to the newest end); False when it is not in the
        window, so the caller computes its features (a forward pass) only for new queries."""
        with self._lock:
            if key not in self._rows:
                return False
            self._observed += 1
            self._rows.move_to_end(key)
            return True

    @property
    def observed(self) -> int:
        """Queries observed since start, repeats included."""
        with self._lock:
            return self._observed

    def __len__(self) -> int:
        with self._lock:
            return len(self._rows)

    def rows(self) -> list[dict[str, float | str]]:
        """A copy of the window's feature rows, oldest first (served by ``GET /v1/drift/window``)."""
        return self.keyed_rows()[1]

    def keyed_rows(self) -> tuple[list[str | None], list[dict[str, float | str]]]:
        """Each row's ``key`` (None: observed without one) and a copy of the rows, oldest first."""
        with self._lock:
            keys = [slot if isinstance(slot, str) else None for slot in self._rows]
            return keys, [dict(r) for r in self._rows.values()]

    def report(self) -> DriftReport:
        with self._lock:
            rows = list(self._rows.values())
        return compare(self.reference, rows)
