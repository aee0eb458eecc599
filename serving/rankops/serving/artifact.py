"""Model artifacts: one directory per version at any fsspec URI (plain paths and ``file://`` work;
``s3://`` with the ``s3`` extra).

Files:

    model.pt              torch state_dict of RankingNet
    model_config.json     architecture + vocabularies + relevance calibration (ModelConfig,
                          format 2; format-1 artifacts are refused with a message to retrain)
    item_embeddings.npy   the catalogue's sentence-encoder embeddings (float32, items x 384),
                          when the model uses an encoder
    query_map.npz         the static query encoder's fit (``rankops.serving.static_encoder``),
                          when the model was trained with ``--query-encoder static``
    catalog.jsonl         the items the model ranks: id, title, description, source (slug),
                          source_name (display name), domain, region, granularity
    golden.jsonl          held-out queries with graded judgments: query_id, text, judgments
    reference_stats.json  drift reference statistics of the training queries (DriftReference)
    manifest.json         name, version, parent_version, created, training_data digest, metrics,
                          seed, torch version, and {"sha256", "size"} of every other file

``manifest.json`` is written last, so a half-written directory never verifies. The sha256 of
``manifest.json`` identifies an artifact (``ModelArtifact.sha256``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import fsspec
import numpy as np
import torch

from rankops.serving.drift import DriftReference
from rankops.serving.encoder import limit_inference_threads, shared_encoder
from rankops.serving.model import FastScorer, Featurizer, ModelConfig, Ranker, RankingNet, top_k_rows
from rankops.serving.query_batcher import QueryBatcher
from rankops.serving.static_encoder import STATIC, QueryMap, StaticQueryEncoder

MANIFEST = "manifest.json"
WEIGHTS = "model.pt"
CONFIG = "model_config.json"
CATALOG = "catalog.jsonl"
GOLDEN = "golden.jsonl"
REFERENCE = "reference_stats.json"
EMBEDDINGS = "item_embeddings.npy"
QUERY_MAP = "query_map.npz"
REQUIRED_FILES = (WEIGHTS, CONFIG, CATALOG, GOLDEN, REFERENCE)
MANIFEST_FORMAT = 1


class ArtifactIntegrityError(Exception):
    """The artifact is missing a file or a file does not match its manifest digest."""

    def __init__(self, uri: str, problems: Sequence[str]) -> None:
        self.uri = uri
        self.problems = list(problems)
        super().__init__(f"artifact {uri} failed verification: " + "; ".join(self.problems))


class ArtifactExistsError(FileExistsError):
    """Refusing to overwrite a published artifact."""


@dataclass(frozen=True)
class CatalogItem:
    id: str
    title: str
    description: str
    source: str
    domain: str
    region: str
    granularity: str = ""
    source_name: str = ""  # display name of the publisher; ``source`` is its slug

    @property
    def source_display(self) -> str:
        return self.source_name or self.source

    def meta(self) -> dict[str, str]:
        return {
            "source": self.source,
            "domain": self.domain,
            "region": self.region,
            "granularity": self.granularity,
        }


@dataclass(frozen=True)
class GoldenQuery:
    query_id: str
    text: str
    judgments: dict[str, int]


@dataclass(frozen=True)
class RankedItem:
    item: CatalogItem
    score: float
    relevance: float = 0.5  # calibrated estimate of grade / 4


@dataclass(frozen=True)
class QueryAnalysis:
    """Everything one forward pass tells about a query (used for drift features)."""

    ranked: list[RankedItem]
    domain: str
    domain_confidence: float
    region: str | None
    max_score: float


# ------------------------------------------------------------------------------ paths / io


def _fs(uri: str) -> tuple[fsspec.AbstractFileSystem, str]:
    if not uri:
        raise ValueError("empty artifact URI")
    try:
        fs, path = fsspec.core.url_to_fs(uri)
    except ImportError as exc:  # e.g. s3:// without the s3 extra installed
        raise ValueError(f"cannot open {uri}: {exc}") from exc
    return fs, path.rstrip("/") or "/"


def check_writable(uri: str, *, overwrite: bool = False) -> None:
    """Fail early (before training) when ``uri`` cannot take a new artifact."""
    fs, base = _fs(uri)
    if fs.exists(_join(base, MANIFEST)) and not overwrite:
        raise ArtifactExistsError(
            f"an artifact already exists at {uri} (versions are immutable; use --force)"
        )


def _join(base: str, name: str) -> str:
    return f"{base}/{name}"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _jsonl(records: Sequence[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in records).encode()


def _json(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


# ------------------------------------------------------------------------------ the artifact


class ModelArtifact:
    """A loaded model version. ``rank``/``rank_many``/``predict_domain``/``detect_region`` are
    thread-safe and never mutate state; item representations are computed once at load."""

    def __init__(
        self,
        *,
        uri: str,
        manifest: dict[str, Any],
        sha256: str,
        net: RankingNet,
        catalog: list[CatalogItem],
        golden: list[GoldenQuery],
        reference: DriftReference,
        item_embeddings: np.ndarray | None = None,
        encoder_precision: str | None = None,
        query_map: QueryMap | None = None,
    ) -> None:
        limit_inference_threads()
        # the query encoder's precision: the trained model's, unless the caller or
        # $RANKOPS_ENCODER_PRECISION (fp32 | int8 | static) says otherwise (catalogue embeddings
        # are fp32; static needs the query map a --query-encoder static training wrote)
        self.encoder_precision = (
            encoder_precision or os.environ.get("RANKOPS_ENCODER_PRECISION") or net.config.encoder_quantize
        )
        self.uri = uri
        self.manifest = manifest
        self.version: str = str(manifest.get("version", ""))
        self.sha256 = sha256
        self.catalog = catalog
        self.golden = golden
        self.reference = reference
        self.config: ModelConfig = net.config
        self.query_map = query_map
        embed_query = None
        # the transformer's batcher, for callers that can wait without blocking (the service)
        self.query_batcher: QueryBatcher | None = None
        if net.config.encoder and self.encoder_precision == STATIC:
            if query_map is None:
                raise ValueError(
                    f"the static query encoder needs {QUERY_MAP}, which only a model trained with "
                    f"--query-encoder static has (this one: {net.config.encoder_quantize}); serve it "
                    "with RANKOPS_ENCODER_PRECISION=fp32 or int8"
                )
            embed_query = StaticQueryEncoder(query_map).query
        elif net.config.encoder:
            encoder = shared_encoder(self.encoder_precision)
            embed_query = encoder.query
            self.query_batcher = encoder.batcher
        featurizer = Featurizer(
            net.config,
            [c.title for c in catalog],
            [c.description for c in catalog],
            [c.meta() for c in catalog],
            item_embeddings=item_embeddings,
            embed_query=embed_query,
        )
        self.item_embeddings = item_embeddings
        self.ranker = Ranker(net, featurizer)  # batched torch inference (evaluation)
        self.scorer = FastScorer(net, featurizer)  # per-query numpy inference (request path)
        self._by_id = {c.id: c for c in catalog}

    # -- ranking
    def rank(self, query: str, k: int, query_embedding: np.ndarray | None = None) -> list[RankedItem]:
        """Top-k catalogue items by model score (no business boosts), best first; ties by
        catalogue order. ``query_embedding``: as for ``analyze``."""
        scores, _ = self.scorer.scores(query, query_embedding)
        return self._ranked(top_k_rows(scores[None, :], k)[0])

    def _ranked(self, top: list[tuple[int, float]]) -> list[RankedItem]:
        relevance = self.scorer.relevance([s for _, s in top])
        return [RankedItem(self.catalog[i], s, r) for (i, s), r in zip(top, relevance, strict=True)]

    def rank_many(
        self, queries: Sequence[str], k: int, query_embeddings: np.ndarray | None = None
    ) -> list[list[RankedItem]]:
        """``rank`` for several queries: one batched torch pass (worth it from ~8 queries on).
        ``query_embeddings``: one row per query, as for ``analyze``."""
        queries = list(queries)
        if len(queries) < 8:
            rows = [None] * len(queries) if query_embeddings is None else list(query_embeddings)
            return [self.rank(q, k, row) for q, row in zip(queries, rows, strict=True)]
        tops = self.ranker.top_k(queries, k, query_embeddings)
        return [self._ranked(row) for row in tops]

    def analyze(self, query: str, k: int = 10, query_embedding: np.ndarray | None = None) -> QueryAnalysis:
        """``query_embedding``: the query's encoder vector when the caller has it already
        (from ``query_batcher``); otherwise the model encodes the query itself."""
        row, p = self.scorer.scores(query, query_embedding)
        d = int(np.argmax(p))
        top = top_k_rows(row[None, :], k)
        return QueryAnalysis(
            ranked=self._ranked(top[0]),
            domain=self.config.domains[d] if self.config.domains else "",
            domain_confidence=float(p[d]),
            region=self.detect_region(query),
            max_score=float(row.max()) if row.size else 0.0,
        )

    def item(self, item_id: str) -> CatalogItem | None:
        return self._by_id.get(item_id)

    # -- query understanding
    def predict_domain(self, query: str) -> tuple[str, float]:
        """Most likely domain of the query and its softmax probability."""
        p = self.scorer.domain_probabilities(query)
        d = int(np.argmax(p))
        return (self.config.domains[d] if self.config.domains else "", float(p[d]))

    def detect_region(self, query: str) -> str | None:
        """Region the query names ("singapore", "sg", "s'pore" -> "Singapore"), else None."""
        return self.scorer.parse(query)[0]

    def detect_source(self, query: str) -> str | None:
        return self.scorer.parse(query)[1]

    def __repr__(self) -> str:
        return f"ModelArtifact(uri={self.uri!r}, version={self.version!r}, sha256={self.sha256[:12]})"


# ------------------------------------------------------------------------------ verify / load


def verify_artifact(uri: str) -> list[str]:
    """Problems found (empty list = OK): missing files, size or sha256 mismatches, bad manifest."""
    try:
        fs, base = _fs(uri)
    except ValueError as exc:  # unknown protocol, missing optional dependency
        return [str(exc)]
    mpath = _join(base, MANIFEST)
    if not fs.exists(mpath):
        return [f"{MANIFEST}: missing"]
    try:
        manifest = json.loads(fs.cat_file(mpath))
    except (ValueError, UnicodeDecodeError) as exc:
        return [f"{MANIFEST}: not valid JSON: {exc}"]
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict):
        return [f"{MANIFEST}: no 'files' table"]
    problems = [f"{name}: not listed in {MANIFEST}" for name in REQUIRED_FILES if name not in files]
    for name in sorted(files):
        entry = files[name]
        path = _join(base, name)
        if "/" in name or name.startswith(".") or not isinstance(entry, dict):
            problems.append(f"{name}: invalid manifest entry")
            continue
        if not fs.exists(path):
            problems.append(f"{name}: missing")
            continue
        data = fs.cat_file(path)
        if "size" in entry and len(data) != int(entry["size"]):
            problems.append(f"{name}: size mismatch (manifest {entry['size']}, found {len(data)})")
            continue
        digest = _sha256(data)
        if digest != entry.get("sha256"):
            problems.append(f"{name}: sha256 mismatch (manifest {entry.get('sha256')}, found {digest})")
    return problems


def load_artifact(uri: str, *, verify: bool = True) -> ModelArtifact:
    """Load an artifact; with ``verify`` (default) raise ArtifactIntegrityError on any problem."""
    if verify:
        problems = verify_artifact(uri)
        if problems:
            raise ArtifactIntegrityError(uri, problems)
    fs, base = _fs(uri)
    try:
        manifest_bytes = fs.cat_file(_join(base, MANIFEST))
        manifest = json.loads(manifest_bytes)
        config = ModelConfig.from_json(json.loads(fs.cat_file(_join(base, CONFIG))))
        state = torch.load(
            io.BytesIO(fs.cat_file(_join(base, WEIGHTS))), weights_only=True, map_location="cpu"
        )
        catalog = [CatalogItem(**_catalog_fields(r)) for r in _read_jsonl(fs.cat_file(_join(base, CATALOG)))]
        golden = [
            GoldenQuery(
                str(r["query_id"]), str(r["text"]), {str(k): int(v) for k, v in r["judgments"].items()}
            )
            for r in _read_jsonl(fs.cat_file(_join(base, GOLDEN)))
        ]
        embeddings = None
        if config.encoder:
            embeddings = np.load(io.BytesIO(fs.cat_file(_join(base, EMBEDDINGS))), allow_pickle=False)
            if embeddings.shape[0] != len(catalog):
                raise ValueError(f"{EMBEDDINGS} holds {embeddings.shape[0]} rows for {len(catalog)} items")
        query_map = None
        if config.encoder and config.encoder_quantize == STATIC:
            query_map = QueryMap.from_bytes(fs.cat_file(_join(base, QUERY_MAP)))
        reference = DriftReference.from_json(json.loads(fs.cat_file(_join(base, REFERENCE))))
    except FileNotFoundError as exc:
        raise ArtifactIntegrityError(uri, [f"{exc.filename or exc}: missing"]) from exc
    except (ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise ArtifactIntegrityError(uri, [f"unreadable artifact content: {exc}"]) from exc
    net = RankingNet(config)
    net.load_state_dict(state)
    return ModelArtifact(
        uri=uri,
        manifest=manifest,
        sha256=_sha256(manifest_bytes),
        net=net,
        catalog=catalog,
        golden=golden,
        reference=reference,
        item_embeddings=embeddings,
        query_map=query_map,
    )


def _read_jsonl(data: bytes) -> list[dict[str, Any]]:
    """One JSON record per ``\\n``-terminated line: never ``str.splitlines``, which also splits at
    U+2028, U+0085, form feed... that JSON strings may hold unescaped."""
    out = []
    for line in data.decode("utf-8").split("\n"):
        if line.strip(" \t\r"):
            rec = json.loads(line)
            if not isinstance(rec, dict):
                raise ValueError(f"a JSONL record is not an object: {line[:80]!r}")
            out.append(rec)
    return out


def _catalog_fields(rec: dict[str, Any]) -> dict[str, str]:
    return {k: str(rec.get(k, "")) for k in CatalogItem.__dataclass_fields__}


# ------------------------------------------------------------------------------ write


def weights_bytes(net: RankingNet) -> bytes:
    buf = io.BytesIO()
    torch.save(net.state_dict(), buf)
    return buf.getvalue()


def write_artifact(
    uri: str,
    *,
    name: str,
    version: str,
    net: RankingNet,
    catalog: Sequence[CatalogItem],
    golden: Sequence[GoldenQuery],
    reference: DriftReference,
    item_embeddings: np.ndarray | None = None,
    query_map: QueryMap | None = None,
    parent_version: str | None = None,
    training_data: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    seed: int | None = None,
    extra: dict[str, Any] | None = None,
    overwrite: bool = False,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Write every file, then ``manifest.json`` with their digests; return the manifest.

    Refuses to write over an existing manifest unless ``overwrite``: published versions are
    immutable."""
    fs, base = _fs(uri)
    if fs.exists(_join(base, MANIFEST)) and not overwrite:
        raise ArtifactExistsError(
            f"an artifact already exists at {uri} (versions are immutable; use --force)"
        )
    fs.makedirs(base, exist_ok=True)
    payloads: dict[str, bytes] = {
        WEIGHTS: weights_bytes(net),
        CONFIG: _json(net.config.to_json()),
        CATALOG: _jsonl([asdict(c) for c in catalog]),
        GOLDEN: _jsonl([asdict(g) for g in golden]),
        REFERENCE: _json(reference.to_json()),
    }
    if net.config.encoder:
        if item_embeddings is None or item_embeddings.shape[0] != len(catalog):
            raise ValueError("a model with an encoder needs one embedding per catalogue item")
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(item_embeddings, dtype=np.float32), allow_pickle=False)
        payloads[EMBEDDINGS] = buf.getvalue()
    if net.config.encoder and net.config.encoder_quantize == STATIC:
        if query_map is None:
            raise ValueError("a model trained with the static query encoder needs its query map")
        payloads[QUERY_MAP] = query_map.to_bytes()
    files = {}
    for fname, data in payloads.items():
        with fs.open(_join(base, fname), "wb") as f:
            f.write(data)
        files[fname] = {"sha256": _sha256(data), "size": len(data)}
    created = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    manifest: dict[str, Any] = {
        "format": MANIFEST_FORMAT,
        "name": name,
        "version": version,
        "parent_version": parent_version,
        "created": created.isoformat().replace("+00:00", "Z"),
        "training_data": training_data or {},
        "metrics": metrics or {},
        "seed": seed,
        "torch_version": torch.__version__,
        "weights_sha256": files[WEIGHTS]["sha256"],
        "files": files,
        **(extra or {}),
    }
    with fs.open(_join(base, MANIFEST), "wb") as f:
        f.write(_json(manifest))
    return manifest
