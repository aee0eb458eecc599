"""The torch-only MiniLM against transformers' BertModel on the same weights and inputs."""

from __future__ import annotations

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


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_the_traced_encoder_matches_the_eager_module_at_every_shape(
    batch: tuple[torch.Tensor, torch.Tensor], precision: str
) -> None:
    from rankops.serving.encoder import MeanPooled, traced_for_inference

    eager: torch.nn.Module = load_minilm(model_dir())
    if precision == "int8":
        eager = torch.ao.quantization.quantize_dynamic(  # type: ignore[no-untyped-call]
            eager, {torch.nn.Linear}, dtype=torch.qint8
        )
    pooled = MeanPooled(eager)
    traced = traced_for_inference(pooled)  # traced on a (2, 4) batch
    ids, mask = batch
    with torch.inference_mode():
        # other batch sizes and lengths than the trace's, padded and not
        for rows in (slice(0, 4), slice(1, 2), slice(2, 4)):
            length = int(mask[rows].sum(1).max())
            args = (ids[rows, :length], mask[rows, :length])
            assert torch.equal(traced(*args), pooled(*args)), (precision, rows)
