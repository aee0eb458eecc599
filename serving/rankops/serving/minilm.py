"""all-MiniLM-L6-v2's BERT encoder as a plain torch module, loaded from its safetensors file.

Why not ``transformers.BertModel``: importing ``transformers`` costs ~3 s of CPU on top of
torch (its lazy import machinery scans every model family), and a serving pod or a chore Job
pays it at every start; this module needs only ``torch`` and ``safetensors``. The layout
mirrors BERT's (separate query/key/value/output ``nn.Linear`` layers, post-LayerNorm
residuals, exact GELU), so the parameter names map one to one and the hidden states agree with
``transformers.BertModel`` to float tolerance (``tests/unit/test_minilm.py`` checks it).
Inference only: no dropout, no pooler (the sentence embedding is a masked mean,
``MeanPooled``). Serving runs its ONNX export (``rankops.serving.onnx_encoder``); the module
itself is for the export and for offline work on token states (``static_encoder``).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

__all__ = ["BertConfig", "MeanPooled", "MiniLM", "load_minilm"]


class BertConfig:
    def __init__(self, raw: dict[str, object]) -> None:
        self.vocab_size = int(str(raw["vocab_size"]))
        self.hidden = int(str(raw["hidden_size"]))
        self.layers = int(str(raw["num_hidden_layers"]))
        self.heads = int(str(raw["num_attention_heads"]))
        self.intermediate = int(str(raw["intermediate_size"]))
        self.max_positions = int(str(raw["max_position_embeddings"]))
        self.type_vocab_size = int(str(raw["type_vocab_size"]))
        self.eps = float(str(raw["layer_norm_eps"]))
        if raw.get("hidden_act") != "gelu" or raw.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError("only BERT with exact GELU and absolute positions is supported")


class _Embeddings(nn.Module):
    def __init__(self, c: BertConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(c.vocab_size, c.hidden, padding_idx=0)
        self.position_embeddings = nn.Embedding(c.max_positions, c.hidden)
        self.token_type_embeddings = nn.Embedding(c.type_vocab_size, c.hidden)
        self.LayerNorm = nn.LayerNorm(c.hidden, eps=c.eps)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(ids.shape[1], device=ids.device)
        x = self.word_embeddings(ids) + self.position_embeddings(positions)[None]
        x = x + self.token_type_embeddings.weight[0]  # single-segment input: token type 0
        out: torch.Tensor = self.LayerNorm(x)
        return out


class _Layer(nn.Module):
    def __init__(self, c: BertConfig) -> None:
        super().__init__()
        self.heads = c.heads
        self.query = nn.Linear(c.hidden, c.hidden)
        self.key = nn.Linear(c.hidden, c.hidden)
        self.value = nn.Linear(c.hidden, c.hidden)
        self.attention_out = nn.Linear(c.hidden, c.hidden)
        self.attention_norm = nn.LayerNorm(c.hidden, eps=c.eps)
        self.intermediate = nn.Linear(c.hidden, c.intermediate)
        self.output = nn.Linear(c.intermediate, c.hidden)
        self.output_norm = nn.LayerNorm(c.hidden, eps=c.eps)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, width = x.shape
        return x.view(batch, length, self.heads, width // self.heads).transpose(1, 2)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        q, k, v = self._split(self.query(x)), self._split(self.key(x)), self._split(self.value(x))
        attended = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        attended = attended.transpose(1, 2).reshape(x.shape)
        x = self.attention_norm(x + self.attention_out(attended))
        hidden = self.output(nn.functional.gelu(self.intermediate(x)))
        out: torch.Tensor = self.output_norm(x + hidden)
        return out


class MiniLM(nn.Module):
    """``forward(input_ids, attention_mask) -> last hidden states (batch, length, hidden)``."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.embeddings = _Embeddings(config)
        self.layers = nn.ModuleList(_Layer(config) for _ in range(config.layers))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        x = self.embeddings(input_ids)
        # padded keys get a large negative score, as BERT's extended attention mask does
        keep = attention_mask[:, None, None, :].to(x.dtype)
        bias = (1.0 - keep) * torch.finfo(x.dtype).min
        for layer in self.layers:
            x = layer(x, bias)
        return x


class MeanPooled(nn.Module):
    """Sentence vectors from a token encoder: the mask-weighted mean of its states, unit length."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(ids, mask)
        weights = mask.unsqueeze(2).to(hidden.dtype)
        pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
        return nn.functional.normalize(pooled, dim=1)


_RENAMES = (
    ("attention.self.query.", "query."),
    ("attention.self.key.", "key."),
    ("attention.self.value.", "value."),
    ("attention.output.dense.", "attention_out."),
    ("attention.output.LayerNorm.", "attention_norm."),
    ("intermediate.dense.", "intermediate."),
    ("output.dense.", "output."),
    ("output.LayerNorm.", "output_norm."),
)


def _our_name(name: str) -> str | None:
    if name.startswith("embeddings."):
        return None if name == "embeddings.position_ids" else name
    if not name.startswith("encoder.layer."):
        return None  # the pooler: unused by a mean-pooled sentence encoder
    index, rest = name[len("encoder.layer.") :].split(".", 1)
    for old, new in _RENAMES:
        if rest.startswith(old):
            return f"layers.{index}.{new}{rest[len(old) :]}"
    raise ValueError(f"unexpected BERT parameter {name!r}")


def load_minilm(model_dir: Path) -> MiniLM:
    """The encoder in eval mode, every parameter taken from ``model.safetensors`` (strict)."""
    config = BertConfig(json.loads((model_dir / "config.json").read_text()))
    # Built on the meta device and then given the file's tensors: no random initialisation,
    # which would also draw from torch's global generator and so change what a seeded
    # training run that loads the encoder midway produces.
    with torch.device("meta"):
        model = MiniLM(config)
    state = {}
    for name, tensor in load_file(str(model_dir / "model.safetensors")).items():
        ours = _our_name(name)
        if ours is not None:
            state[ours] = tensor
    model.load_state_dict(state, strict=True, assign=True)
    model.eval()
    return model
