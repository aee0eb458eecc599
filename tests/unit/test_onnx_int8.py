"""The int8 rewrite on a small graph: smoothing is exact, per-token codes follow each row alone."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime
from onnx import TensorProto, helper, numpy_helper

from rankops.serving.onnx_int8 import quantise_per_token, smooth

K, N = 16, 8


def two_layers(seed: int = 0) -> onnx.ModelProto:
    """x (batch, tokens, K) -> relu(x @ a) and x @ b, read by two products of the same x."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(K, N)).astype(np.float32)
    b = rng.normal(size=(K, N)).astype(np.float32)
    c = rng.normal(size=(N, N)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "a"], ["xa"], name="first"),
            helper.make_node("MatMul", ["x", "b"], ["xb"], name="beside"),
            helper.make_node("Relu", ["xa"], ["h"]),
            helper.make_node("MatMul", ["h", "c"], ["y"], name="second"),
        ],
        "two_layers",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "tokens", K])],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "tokens", N]),
            helper.make_tensor_value_info("xb", TensorProto.FLOAT, ["batch", "tokens", N]),
        ],
        [numpy_helper.from_array(w, n) for n, w in (("a", a), ("b", b), ("c", c))],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def run(model: onnx.ModelProto, x: np.ndarray) -> list[np.ndarray]:
    onnx.checker.check_model(model)
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return [np.asarray(v) for v in session.run(["y", "xb"], {"x": x})]


def activations(seed: int, batch: int = 3, tokens: int = 5) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(batch, tokens, K)).astype(np.float32)
    x[..., 3] *= 40.0  # an outlier channel, as BERT's hidden states have
    return x


def test_smoothing_leaves_the_fp32_graph_s_outputs_as_they_were() -> None:
    x = activations(1)
    before = run(two_layers(), x)
    model = two_layers()
    smooth(model, ({"x": activations(seed)} for seed in range(4)))
    assert sum(n.op_type == "Mul" for n in model.graph.node) == 2  # x once for both, h once
    for got, expected in zip(run(model, x), before, strict=True):
        assert np.allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_per_token_codes_are_close_to_fp32_and_ignore_the_other_rows() -> None:
    x = activations(2)
    expected = run(two_layers(), x)
    model = two_layers()
    quantise_per_token(model)
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("MatMulInteger") == 3 and "MatMul" not in ops
    assert ops.count("ReduceMax") == 2  # x is quantised once for the two products reading it
    assert {i.name for i in model.graph.initializer}.isdisjoint({"a", "b", "c"})  # fp32 weights gone
    got = run(model, x)
    for g, e in zip(got, expected, strict=True):
        assert np.abs(g - e).max() < 0.02 * np.abs(e).max()
    # a token 1,000 times larger in another row of the batch changes nothing in this one
    loud = x.copy()
    loud[0, 0] *= 1000.0
    for g, lg in zip(got, run(model, loud), strict=True):
        assert np.array_equal(g[1:], lg[1:]) and np.array_equal(g[0, 1:], lg[0, 1:])


def test_a_constant_row_is_quantised_without_dividing_by_zero() -> None:
    model = two_layers()
    quantise_per_token(model)
    x = np.full((1, 2, K), 0.5, dtype=np.float32)
    y, xb = run(model, x)
    reference = run(two_layers(), x)
    assert np.isfinite(y).all() and np.abs(xb - reference[1]).max() < 0.05
