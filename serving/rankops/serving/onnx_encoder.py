"""The sentence encoder's inference graph: all-MiniLM-L6-v2 with its pooling, in ONNX Runtime.

Why ONNX Runtime and not the module itself: a query is one pass of this graph on the request
path, and on one CPU thread ORT runs it faster than a TorchScript trace of the same module
(one 5-token query: fp32 ~2.4 against ~4.9 ms), and the int8 graph (``onnx_int8``: weights
per output channel, activations per token, smoothed) stays far closer to fp32 than torch's
``quantize_dynamic`` with one scale per tensor (cosine ~0.999 against ~0.95 for one query;
``tests/unit/test_minilm.py`` holds it). ``InferenceSession.run`` releases the GIL for the
whole pass, so the event loop serves requests while a pass runs.

The graph is exported from ``rankops.serving.minilm`` (torch's TorchScript-based exporter:
no ``onnxscript``), rewritten to int8 by ``onnx_int8``, and written once per
weights file, precision and library versions under ``$RANKOPS_ENCODER_CACHE`` (default
``~/.cache/rankops/onnx``; the serving image builds both at image build time): ~5 s the first
time, then a process opens the file in ~0.1 s without building the torch module at all.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np

__all__ = ["PRECISIONS", "SentenceGraph", "graph_path"]

PRECISIONS = ("fp32", "int8")
# bump when what build_graph writes changes, so old cached graphs are not read
GRAPH_FORMAT = "minilm-meanpooled-2"  # 2: int8 per token (onnx_int8)
WEIGHTS = "model.safetensors"


def cache_root() -> Path:
    return Path(os.environ.get("RANKOPS_ENCODER_CACHE") or Path.home() / ".cache" / "rankops" / "onnx")


def graph_path(model_dir: Path, precision: str) -> Path:
    """Where the graph for these weights, this precision and these library versions lives."""
    import onnx
    import onnxruntime
    import torch

    key = hashlib.sha256(f"{GRAPH_FORMAT}|{precision}|{torch.__version__}|{onnx.__version__}|".encode())
    key.update(onnxruntime.__version__.encode())
    with (model_dir / WEIGHTS).open("rb") as fh:
        key.update(hashlib.file_digest(fh, "sha256").digest())
    return cache_root() / f"minilm-{precision}-{key.hexdigest()[:16]}.onnx"


def build_graph(model_dir: Path, precision: str, out: Path) -> None:
    """Export the pooled encoder to ``out`` (and quantise it for int8), atomically."""
    import torch

    from rankops.serving.minilm import MeanPooled, load_minilm

    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".build-") as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        ids = torch.tensor([[101, 2023, 2003, 102], [101, 2023, 102, 0]], dtype=torch.long)
        axes = {"ids": {0: "batch", 1: "length"}, "mask": {0: "batch", 1: "length"}, "vectors": {0: "batch"}}
        with warnings.catch_warnings(), torch.inference_mode():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
            torch.onnx.export(
                MeanPooled(load_minilm(model_dir)),
                (ids, (ids != 0).to(torch.long)),
                str(fp32),
                input_names=["ids", "mask"],
                output_names=["vectors"],
                dynamic_axes=axes,
                opset_version=17,
                dynamo=False,
            )
        built = fp32
        if precision == "int8":
            from rankops.serving.onnx_int8 import int8_rewrite

            built = Path(tmp) / "int8.onnx"
            int8_rewrite(fp32, built, model_dir / "tokenizer.json")
        os.replace(built, out)  # atomic: a process racing this one reads a whole graph or none


def built_graph(model_dir: Path, precision: str, path: Path) -> Path:
    """Build the graph at ``path``, or in the temporary directory where that is not writable
    (a read-only image whose prebuilt graph is for other versions): the pod still starts."""
    try:
        build_graph(model_dir, precision, path)
        return path
    except OSError:
        fallback = Path(tempfile.gettempdir()) / "rankops-onnx" / path.name
        build_graph(model_dir, precision, fallback)
        return fallback


class SentenceGraph:
    """``(ids, mask) -> (batch, 384)`` unit vectors, int64 arrays in, float32 out; thread-safe."""

    def __init__(self, model_dir: Path, precision: str, threads: int = 1) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be fp32 or int8, not {precision!r}")
        import onnxruntime

        self.precision = precision
        self.path = graph_path(model_dir, precision)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # with more than one thread, idle pool threads would spin on cores the loop needs
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if not self.path.is_file():
            self.path = built_graph(model_dir, precision, self.path)
        cpu = ["CPUExecutionProvider"]
        try:
            self.session = onnxruntime.InferenceSession(str(self.path), options, providers=cpu)
        except Exception:  # ORT's own error types: a truncated or foreign file, so build it again, once
            self.path = built_graph(model_dir, precision, self.path)
            self.session = onnxruntime.InferenceSession(str(self.path), options, providers=cpu)

    def __call__(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        (vectors,) = self.session.run(["vectors"], {"ids": ids, "mask": mask})
        return np.asarray(vectors, dtype=np.float32)
