"""The torch-only MiniLM against transformers' BertModel, and its ONNX graph against the module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from rankops.serving.encoder import model_dir
from rankops.serving.minilm import load_minilm

TEXTS = [
    "singapore housing prices",
    "climate change indicators for south-east asia, monthly, from the world bank",
    "x",
    "",
]


@pytest.fixture(scope="module")
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model_dir() / "tokenizer.json"))
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    encoded = tokenizer.encode_batch(TEXTS)
    ids = torch.tensor([e.ids for e in encoded], dtype=torch.long)
    return ids, torch.tensor([e.attention_mask for e in encoded], dtype=torch.long)


def test_hidden_states_match_transformers_bert(batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    transformers = pytest.importorskip("transformers")
    ids, mask = batch
    reference = transformers.BertModel.from_pretrained(str(model_dir()), local_files_only=True).eval()
    ours = load_minilm(model_dir())
    with torch.inference_mode():
        expected = reference(input_ids=ids, attention_mask=mask).last_hidden_state
        got = ours(ids, mask)
    real = mask[..., None].bool().expand_as(got)  # padded positions are never read (masked mean)
    assert got.shape == expected.shape
    assert torch.allclose(got[real], expected[real], atol=1e-4, rtol=1e-4)
    assert (mask.sum(1) > 1).all()  # even "" is [CLS] [SEP]: the mean has tokens to average


def test_every_parameter_comes_from_the_weights_file() -> None:
    from safetensors.torch import load_file

    weights = load_file(str(model_dir() / "model.safetensors"))
    ours = load_minilm(model_dir())
    assert torch.equal(ours.embeddings.word_embeddings.weight, weights["embeddings.word_embeddings.weight"])
    assert torch.equal(ours.layers[5].output.weight, weights["encoder.layer.5.output.dense.weight"])
    assert torch.equal(
        ours.layers[0].attention_out.bias, weights["encoder.layer.0.attention.output.dense.bias"]
    )


def test_loading_draws_nothing_from_torchs_generator() -> None:
    torch.manual_seed(3)
    expected = torch.rand(4)
    torch.manual_seed(3)
    load_minilm(model_dir())
    assert torch.equal(torch.rand(4), expected)  # a seeded training run is the same either way


@pytest.fixture(scope="module")
def graph_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("onnx")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RANKOPS_ENCODER_CACHE", str(root))
        yield root


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_the_onnx_graph_matches_the_torch_module_at_every_shape(
    batch: tuple[torch.Tensor, torch.Tensor], precision: str, graph_cache: Path
) -> None:
    from rankops.serving.minilm import MeanPooled
    from rankops.serving.onnx_encoder import SentenceGraph

    pooled = MeanPooled(load_minilm(model_dir()))
    torch_int8 = MeanPooled(
        torch.ao.quantization.quantize_dynamic(  # type: ignore[no-untyped-call]
            load_minilm(model_dir()), {torch.nn.Linear}, dtype=torch.qint8
        )
    )
    graph = SentenceGraph(model_dir(), precision)  # exported from a (2, 4) batch
    assert graph.path.parent == graph_cache
    ids, mask = batch
    with torch.inference_mode():
        # other batch sizes and lengths than the export's, padded and not
        for rows in (slice(0, 4), slice(1, 2), slice(2, 4)):
            length = int(mask[rows].sum(1).max())
            args = (ids[rows, :length], mask[rows, :length])
            expected = pooled(*args).numpy()
            got = graph(args[0].numpy(), args[1].numpy())
            assert got.shape == expected.shape and got.dtype == np.float32
            assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
            if precision == "fp32":
                assert np.abs(got - expected).max() < 1e-5, rows
            else:  # per-token activations keep int8 closer to fp32 than torch's (onnx_encoder says why)
                fidelity = (got * expected).sum(1)
                torch_fidelity = (torch_int8(*args).numpy() * expected).sum(1)
                assert fidelity.min() > 0.995 and fidelity.mean() > torch_fidelity.mean(), rows
                alone = np.concatenate(
                    [graph(args[0][i : i + 1].numpy(), args[1][i : i + 1].numpy()) for i in range(len(got))]
                )
                assert np.abs(alone - got).max() < 1e-3, rows  # a row's codes ignore its batch


def test_a_graph_is_built_once_and_a_damaged_one_is_built_again(graph_cache: Path) -> None:
    from rankops.serving.onnx_encoder import SentenceGraph

    first = SentenceGraph(model_dir(), "fp32")
    built = first.path.stat().st_mtime_ns
    assert SentenceGraph(model_dir(), "fp32").path.stat().st_mtime_ns == built  # read, not rebuilt
    first.path.write_bytes(b"not a graph")
    again = SentenceGraph(model_dir(), "fp32")
    assert again.path == first.path and again.path.stat().st_size > 1_000_000
    ids = np.array([[101, 2023, 102]], dtype=np.int64)
    assert np.allclose(again(ids, np.ones_like(ids)), first(ids, np.ones_like(ids)), atol=1e-6)


def test_the_graph_refuses_an_unknown_precision() -> None:
    from rankops.serving.onnx_encoder import SentenceGraph

    with pytest.raises(ValueError, match="fp32 or int8"):
        SentenceGraph(model_dir(), "fp16")


def test_an_unwritable_cache_builds_the_graph_in_the_temporary_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    from rankops.serving.onnx_encoder import SentenceGraph

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("RANKOPS_ENCODER_CACHE", str(blocker / "onnx"))  # cannot be a directory
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    graph = SentenceGraph(model_dir(), "fp32")
    assert graph.path.parent == tmp_path / "tmp" / "rankops-onnx"
    ids = np.array([[101, 2023, 102]], dtype=np.int64)
    assert graph(ids, np.ones_like(ids)).shape == (1, 384)
