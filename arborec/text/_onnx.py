"""The fast CPU path: the sentence encoder exported to ONNX (mean pooling and L2 norm inside), optionally int8."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from arborec.diagnostics import logger
from arborec.data import private_tmp


def export_onnx(sentence_transformer, path: Path) -> Path:
    """Export a mean-pooling sentence-transformers model to ONNX at ``path``.

    The graph takes ``input_ids`` and ``attention_mask`` (B, T) int64 and returns L2-normalised
    sentence vectors (B, D). Attention is switched to the eager implementation for the export:
    the fused (SDPA) path traces shape-dependent branches as constants and gives wrong vectors
    for other batch shapes.
    """
    import torch

    transformer = sentence_transformer[0].auto_model
    previous = getattr(transformer.config, "_attn_implementation", None)
    if hasattr(transformer, "set_attn_implementation"):
        transformer.set_attn_implementation("eager")
    else:
        transformer.config._attn_implementation = "eager"

    class Pooled(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask):
            hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # (B, T, D)
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)  # (B, D)
            return torch.nn.functional.normalize(mean, dim=-1)

    path.parent.mkdir(parents=True, exist_ok=True)
    tokens = sentence_transformer.tokenizer(["an example", "a longer example sentence"], padding=True,
                                            return_tensors="pt")
    tmp = private_tmp(path)  # two processes may export at once: each writes its own file, the last replace wins
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings about branches that are constant for this model
            torch.onnx.export(Pooled(transformer.eval()), (tokens["input_ids"], tokens["attention_mask"]), str(tmp),
                              input_names=["input_ids", "attention_mask"], output_names=["embedding"],
                              dynamic_axes={"input_ids": {0: "batch", 1: "tokens"},
                                            "attention_mask": {0: "batch", 1: "tokens"}, "embedding": {0: "batch"}},
                              opset_version=17, dynamo=False)
    finally:
        if previous is not None and hasattr(transformer, "set_attn_implementation"):
            transformer.set_attn_implementation(previous)
    os.replace(tmp, path)
    logger.info("exported ONNX encoder to %s", path)
    return path


def quantize_int8(fp32_path: Path, int8_path: Path) -> Path:
    """Per-channel dynamic int8 quantisation of the MatMul weights.

    Embeddings and the feed-forward output projections stay fp32: quantising those too drops the
    worst item's cosine with fp32 to 0.984 on Amazon Beauty titles; without them it stays >= 0.993
    (measured by benchmarks/bench_encode.py).
    """
    import logging

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(fp32_path), load_external_data=False).graph
    keep_fp32 = [n.name for n in graph.node
                 if n.op_type == "MatMul" and "/output/dense" in n.name and "attention" not in n.name]
    tmp = private_tmp(int8_path)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantiser logs every tensor (and advice) on the root logger
    try:
        quantize_dynamic(str(fp32_path), str(tmp), per_channel=True, weight_type=QuantType.QInt8,
                         op_types_to_quantize=["MatMul"], nodes_to_exclude=keep_fp32)
    finally:
        root.setLevel(level)
    os.replace(tmp, int8_path)
    return int8_path


class OnnxSession:
    """Runs an exported encoder with ONNX Runtime on the CPU."""

    def __init__(self, path: Path, threads: int | None = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        return self.session.run(None, {"input_ids": input_ids.astype(np.int64),
                                       "attention_mask": attention_mask.astype(np.int64)})[0]
