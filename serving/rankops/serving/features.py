"""Text and metadata features shared by training and serving.

Everything here is deterministic across processes (no salted ``hash()``): hashed feature ids
come from CRC32, so a model trained in one process scores identically in another.
"""

from __future__ import annotations

import itertools
import math
import re
import zlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache

import numpy as np
import scipy.sparse as sp

TOKEN_RE = re.compile(r"[a-z0-9]+(?:['.][a-z0-9]+)*")

# Geography the model knows about. Phrases are matched on whole tokens.
REGION_PHRASES: dict[str, tuple[str, ...]] = {
    "Singapore": ("singapore", "sg", "s'pore", "spore", "singapore's", "singaporean", "sporean", "sgp"),
    "Malaysia": ("malaysia", "malaysian", "msia"),
    "Indonesia": ("indonesia", "indonesian"),
    "Thailand": ("thailand", "thai"),
    "ASEAN": ("asean", "southeast asia", "south east asia", "southeast asian", "south east asian"),
    "Asia-Pacific": ("asia pacific", "apac", "asia and the pacific"),
    "Global": (
        "global",
        "globally",
        "worldwide",
        "around the world",
        "all countries",
        "international comparison",
        "cross country",
    ),
}
# Regions that contain a region: an ASEAN-wide table still covers Singapore.
REGION_PARENTS: dict[str, frozenset[str]] = {
    "Singapore": frozenset({"ASEAN", "Asia-Pacific", "Global"}),
    "Malaysia": frozenset({"ASEAN", "Asia-Pacific", "Global"}),
    "Indonesia": frozenset({"ASEAN", "Asia-Pacific", "Global"}),
    "Thailand": frozenset({"ASEAN", "Asia-Pacific", "Global"}),
    "ASEAN": frozenset({"Asia-Pacific", "Global"}),
    "Asia-Pacific": frozenset({"Global"}),
    "Global": frozenset(),
}
# Well-known aliases of publishers; every catalogue source also matches its own name.
SOURCE_ALIASES: dict[str, tuple[str, ...]] = {
    "data.gov.sg": ("datagov sg", "data gov sg", "government data portal"),
    "SingStat": ("department of statistics", "dos"),
    "LTA DataMall": ("datamall", "lta", "land transport authority"),
    "OneMap": ("one map",),
    "URA": ("urban redevelopment authority",),
    "MOH": ("ministry of health",),
    "NEA": ("environment agency", "national environment agency"),
    "EMA": ("energy market authority",),
    "World Bank": ("worldbank", "wdi"),
    "WHO": ("world health organization", "who gho"),
    "UN Data": ("united nations", "undata"),
    "ASEANstats": ("asean statistics",),
    "ADB": ("asian development bank",),
    "DOSM": ("statistics malaysia",),
    "BPS": ("statistics indonesia",),
    "NSO Thailand": ("thai statistical office",),
}
# the same publishers under their slugs (the bundled catalogue's ``source``)
SOURCE_ALIASES |= {
    "data_gov_sg": ("data.gov.sg", *SOURCE_ALIASES["data.gov.sg"]),
    "singstat": ("singstat", *SOURCE_ALIASES["SingStat"]),
    "lta_datamall": ("lta datamall", *SOURCE_ALIASES["LTA DataMall"]),
    "onemap": ("onemap", *SOURCE_ALIASES["OneMap"]),
    "ura": ("ura", *SOURCE_ALIASES["URA"]),
    "moh": ("moh", *SOURCE_ALIASES["MOH"]),
    "nea": ("nea", *SOURCE_ALIASES["NEA"]),
    "ema": ("ema", *SOURCE_ALIASES["EMA"]),
    "world_bank": ("world bank", *SOURCE_ALIASES["World Bank"]),
    "who": ("who gho", *SOURCE_ALIASES["WHO"]),
    "oecd": ("oecd",),
    "un_data": ("un data", *SOURCE_ALIASES["UN Data"]),
    "aseanstats": ("aseanstats", *SOURCE_ALIASES["ASEANstats"]),
    "adb": ("adb", *SOURCE_ALIASES["ADB"]),
    "dosm": ("dosm", *SOURCE_ALIASES["DOSM"]),
    "bps": ("bps", *SOURCE_ALIASES["BPS"]),
    "nso_thailand": ("nso thailand", *SOURCE_ALIASES["NSO Thailand"]),
}
AMBIGUOUS_NAMES = frozenset({"who", "one", "data"})
GRANULARITY_PHRASES: dict[str, tuple[str, ...]] = {
    "daily": ("daily", "per day", "day by day", "each day", "every day"),
    "monthly": ("monthly", "per month", "month by month", "each month", "every month"),
    "quarterly": ("quarterly", "every quarter", "per quarter", "each quarter"),
    "annual": ("yearly", "annual", "annually", "per year", "each year", "every year"),
    "real-time": ("live feed", "live data", "real time", "realtime", "right now", "up to the minute"),
}


_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'"})


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens; typographic apostrophes count as "'" (S\u2019pore = s'pore)."""
    return TOKEN_RE.findall(text.lower().translate(_APOSTROPHES))


def normalize_phrase(text: str) -> str:
    return " ".join(tokenize(text.replace("-", " ")))


@lru_cache(maxsize=262_144)
def stable_hash(feature: str, buckets: int) -> int:
    return zlib.crc32(feature.encode("utf-8")) % buckets


def _ngrams(tokens: Sequence[str]) -> list[str]:
    feats = [f"w:{t}" for t in tokens]
    feats += [f"b:{a}_{b}" for a, b in itertools.pairwise(tokens)]
    return feats


def _char_ngrams(tokens: Sequence[str], n: int = 3) -> list[str]:
    out: list[str] = []
    for t in tokens:
        s = f"<{t}>"
        out += [f"c:{s[i : i + n]}" for i in range(max(1, len(s) - n + 1))]
    return out


def query_feature_strings(text: str) -> list[str]:
    tokens = tokenize(text.replace("-", " "))
    return _ngrams(tokens) + _char_ngrams(tokens) or ["<empty>"]


def item_feature_strings(title: str, description: str, meta: dict[str, str]) -> list[str]:
    title_tokens = tokenize(title.replace("-", " "))
    desc_tokens = tokenize(description.replace("-", " "))
    feats = _ngrams(title_tokens) + _char_ngrams(title_tokens) + _ngrams(desc_tokens)
    feats += [f"m:{k}={v.lower()}" for k, v in sorted(meta.items()) if v]
    return feats or ["<empty>"]


def hash_features(feats: Iterable[str], buckets: int) -> list[int]:
    return [stable_hash(f, buckets) for f in feats]


class PhraseMatcher:
    """Finds the first (longest, leftmost) lexicon phrase in a token sequence."""

    def __init__(self, phrases: Mapping[str, Iterable[str]]) -> None:
        self._by_len: dict[int, dict[tuple[str, ...], str]] = {}
        for label, alts in phrases.items():
            for alt in alts:
                toks = tuple(normalize_phrase(alt).split())
                if toks:
                    self._by_len.setdefault(len(toks), {})[toks] = label
        self._lengths = sorted(self._by_len, reverse=True)

    def find(self, tokens: Sequence[str]) -> tuple[str, int, int] | None:
        best: tuple[str, int, int] | None = None
        for n in self._lengths:
            table = self._by_len[n]
            for i in range(len(tokens) - n + 1):
                label = table.get(tuple(tokens[i : i + n]))
                if label is not None and (best is None or i < best[1]):
                    best = (label, i, i + n)
                    break
            if best is not None:
                return best
        return best


class QueryParser:
    """Rule-based detection of region, publisher and granularity named in a query."""

    def __init__(self, sources: Iterable[str]) -> None:
        src_phrases: dict[str, list[str]] = {}
        for s in sources:
            names = [s, s.replace(".", " "), s.replace("_", " ")]
            # a bare common word ("who") is not taken as a publisher's name
            names = [n for n in names if normalize_phrase(n) not in AMBIGUOUS_NAMES]
            src_phrases[s] = [*names, *SOURCE_ALIASES.get(s, ())]
        self.sources = PhraseMatcher(src_phrases)
        self.regions = PhraseMatcher(REGION_PHRASES)
        self.granularities = PhraseMatcher(GRANULARITY_PHRASES)

    def parse(self, text: str) -> tuple[str | None, str | None, str | None]:
        """Return (region, source, granularity); the source phrase is removed before the region
        is looked for, so "world bank" does not read as a Global request."""
        tokens = tokenize(text.replace("-", " "))
        # "data.gov.sg" tokenizes as one token; also try the dotted parts for source matching
        source = None
        hit = self.sources.find(tokens)
        if hit is not None:
            source = hit[0]
            tokens = tokens[: hit[1]] + tokens[hit[2] :]
        region_hit = self.regions.find(tokens)
        gran_hit = self.granularities.find(tokens)
        return (region_hit[0] if region_hit else None, source, gran_hit[0] if gran_hit else None)


class TfidfIndex:
    """Hashed-unigram TF-IDF over title + description with cosine scoring (a lexical signal)."""

    def __init__(self, docs: Sequence[str], buckets: int = 1 << 18) -> None:
        self.buckets = buckets
        rows: list[int] = []
        cols: list[int] = []
        tfs: list[float] = []
        df: Counter[int] = Counter()
        for r, doc in enumerate(docs):
            counts = Counter(stable_hash(t, buckets) for t in tokenize(doc))
            df.update(counts.keys())
            for c, n in counts.items():
                rows.append(r)
                cols.append(c)
                tfs.append(1.0 + math.log(n))
        n_docs = max(1, len(docs))
        self.idf = np.zeros(buckets, dtype=np.float32)
        for c, n in df.items():
            self.idf[c] = math.log((1 + n_docs) / (1 + n)) + 1.0
        data = np.array(tfs, dtype=np.float32) * self.idf[np.array(cols, dtype=np.int64)]
        mat = sp.csr_matrix((data, (rows, cols)), shape=(len(docs), buckets), dtype=np.float32)
        norms = np.sqrt(np.asarray(mat.multiply(mat).sum(axis=1)).ravel())
        norms[norms == 0] = 1.0
        self.matrix = sp.csr_matrix(sp.diags(1.0 / norms) @ mat, dtype=np.float32)
        self.matrix_t = sp.csr_matrix(self.matrix.T)

    def query_vector(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        counts = Counter(stable_hash(t, self.buckets) for t in tokenize(text))
        if not counts:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        cols = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
        tf = 1.0 + np.log(np.fromiter(counts.values(), dtype=np.float32, count=len(counts)))
        w = tf * self.idf[cols]
        norm = float(np.sqrt((w * w).sum()))
        return cols, (w / norm if norm > 0 else w).astype(np.float32)

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        """Cosine similarity, shape (len(texts), n_docs)."""
        n_docs = self.matrix.shape[0]
        out = np.zeros((len(texts), n_docs), dtype=np.float32)
        indptr, indices, data = self.matrix_t.indptr, self.matrix_t.indices, self.matrix_t.data
        for i, text in enumerate(texts):
            cols, w = self.query_vector(text)
            if len(cols):
                # the query's few posting lists summed straight from the CSR arrays: scipy's
                # fancy row indexing costs more than the arithmetic for a short query
                spans = [(int(indptr[c]), int(indptr[c + 1])) for c in cols]
                docs = np.concatenate([indices[a:b] for a, b in spans])
                weights = np.concatenate([data[a:b] * wc for (a, b), wc in zip(spans, w, strict=True)])
                out[i] = np.bincount(docs, weights=weights, minlength=n_docs)
        return out
