"""The text stage: encoder contract, fast path against the reference, the cache, fine-tuning, text-only recommender."""

import numpy as np
import pandas as pd
import pytest

from arborec.data import Split
from arborec.evaluate import evaluate
from arborec.text import ItemTextTemplate, TextEncoder, cooccurrence_pairs, encode_items, fit_adapter
from arborec.text.recommender import FineTunedText, TextOnly

TEXTS = ["Moisturizing face cream for dry skin", "Hydrating facial moisturizer for dry sensitive skin",
         "Heavy duty cordless power drill", "Volumizing shampoo for fine hair", ""]


@pytest.fixture(scope="module")
def onnx_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("onnx")


@pytest.fixture(scope="module")
def torch_vectors():
    return TextEncoder(backend="torch").encode(TEXTS)


def test_vectors_normalised_deterministic_and_semantic(torch_vectors):
    v = torch_vectors
    assert v.shape == (5, 384) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(v, TextEncoder(backend="torch").encode(TEXTS))
    sim = v @ v.T
    assert sim[0, 1] > sim[0, 2] + 0.3 and sim[0, 1] > sim[0, 3]  # creams closer to each other than to a drill


@pytest.mark.parametrize("backend,min_cos,mean_cos", [("onnx", 0.999, 0.9999), ("onnx-int8", 0.98, 0.99),
                                                      ("torch-bf16", 0.999, 0.9995)])
def test_fast_path_agrees_with_reference(backend, min_cos, mean_cos, torch_vectors, onnx_dir):
    # on all 12,101 Beauty items: see benchmarks/results/encode_amazon-beauty.md (min >= 0.99 there)
    fast = TextEncoder(backend=backend, cache_dir=onnx_dir).encode(TEXTS)
    cos = (fast * torch_vectors).sum(axis=1)
    assert cos.min() >= min_cos and cos.mean() >= mean_cos, cos
    np.testing.assert_allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)


class CountingEncoder(TextEncoder):
    def __init__(self, **kw):
        super().__init__(backend="torch", **kw)
        self.encoded = 0

    def encode(self, texts, progress=False):
        self.encoded += len(texts)
        return super().encode(texts, progress)


def test_auto_backend_is_the_fastest_measured_on_the_machine_kind(monkeypatch):
    import arborec.text._encoder as enc_module

    monkeypatch.setattr(enc_module, "cpu_flags", lambda: {"avx2", "avx512f", "avx512_bf16", "amx_bf16"})
    assert enc_module.machine_kind() == "amx"
    assert TextEncoder()._resolved_backend() == "torch-bf16" and TextEncoder().precision == "bf16"
    # AVX512-BF16 without AMX (AMD EPYC Zen 4): bf16 is not faster than ONNX int8 there (measured)
    monkeypatch.setattr(enc_module, "cpu_flags", lambda: {"avx2", "avx512f", "avx512_bf16"})
    assert enc_module.machine_kind() == "avx512-bf16"
    assert TextEncoder()._resolved_backend() == enc_module.FASTEST["avx512-bf16"]
    monkeypatch.setattr(enc_module, "cpu_flags", lambda: {"avx2"})
    assert TextEncoder()._resolved_backend() == "onnx-int8"
    assert TextEncoder().model_key != TextEncoder(backend="torch").model_key  # cached apart


def test_static_backend_is_a_distilled_model_cached_apart(tmp_path, monkeypatch):
    import arborec.text._static as static_module

    class Fake:  # stands in for the distilled model: distilling the real one takes minutes
        def encode(self, texts, batch_size=1024, show_progress_bar=False):
            return np.array([[len(t), 1.0, 0.0] for t in texts], dtype=np.float32)

    calls = []
    monkeypatch.setattr(static_module, "static_model", lambda path, folder: calls.append(folder) or Fake())
    enc = TextEncoder(backend="static", cache_dir=tmp_path)
    v = enc.encode(["ab", "abcd"])
    assert v.shape == (2, 3) and np.allclose(np.linalg.norm(v, axis=1), 1.0)
    assert enc.precision == "static" and enc.model_key.endswith("-static") and len(calls) == 1
    assert enc.model_key != TextEncoder(backend="onnx-int8").model_key


def test_cache_is_incremental(tmp_path):
    catalog = pd.DataFrame({"item": [f"i{i}" for i in range(8)], "title": [f"Product number {i}" for i in range(8)],
                            "category_path": [["A", "B"]] * 8})
    enc = CountingEncoder()
    first = encode_items(catalog, enc, cache_dir=tmp_path)
    assert enc.encoded == 8
    again = encode_items(catalog, enc, cache_dir=tmp_path)
    assert enc.encoded == 8
    np.testing.assert_array_equal(first, again)
    more = pd.concat([catalog, pd.DataFrame({"item": ["n1", "n2"], "title": ["New thing", "Another new thing"],
                                             "category_path": [[], []]})], ignore_index=True)
    vectors = encode_items(more, enc, cache_dir=tmp_path)
    assert enc.encoded == 10  # only the two new texts
    np.testing.assert_array_equal(vectors[:8], first)


def test_cache_keeps_every_vector_when_processes_add_at_once(tmp_path, monkeypatch):
    """Two writers that counted the same shards (two suite runs encoding one catalogue) each keep their own."""
    import threading

    from arborec.text._cache import VectorCache, text_key

    both_written = threading.Barrier(2, timeout=30)
    savez = np.savez

    def savez_then_wait(*args, **kwargs):  # both have counted the shards and written before either renames
        savez(*args, **kwargs)
        both_written.wait()

    monkeypatch.setattr(np, "savez", savez_then_wait)
    caches, errors = [VectorCache(tmp_path), VectorCache(tmp_path)], []

    def add(w):
        try:
            caches[w].add([text_key(f"writer {w} text {i}") for i in range(5)], np.full((5, 3), w, dtype=np.float32))
        except Exception as e:  # noqa: BLE001 - asserted below
            errors.append(e)

    threads = [threading.Thread(target=add, args=(w,)) for w in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    monkeypatch.undo()
    merged = VectorCache(tmp_path)
    assert len(merged) == 10
    found, vectors = merged.lookup([text_key("writer 0 text 4"), text_key("writer 1 text 4")])
    assert found.all() and vectors[:, 0].tolist() == [0, 1]
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind


def test_chunked_encoding_into_a_memory_mapped_file(tmp_path):
    """``out=``: chunk by chunk into a .npy, returned memory-mapped; the same vectors as in memory."""
    catalog = pd.DataFrame({"item": [f"i{i}" for i in range(7)], "title": [f"Product number {i % 5}" for i in range(7)],
                            "category_path": [["A", "B"]] * 7})
    in_memory = encode_items(catalog, CountingEncoder(), use_cache=False)
    enc = CountingEncoder()
    mapped = encode_items(catalog, enc, cache_dir=tmp_path / "cache", out=tmp_path / "v.npy", chunk_items=3)
    assert isinstance(mapped, np.memmap) and not mapped.flags.writeable
    np.testing.assert_array_equal(mapped, in_memory)
    np.testing.assert_array_equal(np.load(tmp_path / "v.npy"), in_memory)
    assert enc.encoded == 5  # the repeated texts of later chunks come from the cache
    again = encode_items(catalog.iloc[::-1], enc, cache_dir=tmp_path / "cache", out=tmp_path / "w.npy", chunk_items=2)
    assert enc.encoded == 5
    np.testing.assert_array_equal(again, in_memory[::-1])


def test_template_handles_missing_and_empty_fields():
    catalog = pd.DataFrame({"item": ["a", "b", "c"], "title": ["Lip Gloss", "", None],
                            "brand": ["Kiri", None, ""], "category_path": [["Beauty", "Makeup", "Lips"], [], None]})
    catalog["category_path"] = [p if isinstance(p, list) else [] for p in catalog["category_path"]]
    texts = ItemTextTemplate().render(catalog)
    assert texts[0] == "Lip Gloss. Brand: Kiri. Category: Makeup > Lips"
    assert texts[1] == "" and texts[2] == ""
    vectors = TextEncoder(backend="torch").encode(texts)
    assert np.isfinite(vectors).all()


def test_cooccurrence_pairs_use_training_sequences_only():
    split = Split(n_users=2, n_items=6, train_indptr=np.array([0, 3, 4]), train_items=np.array([0, 1, 2, 3], np.int32),
                  train_times=np.arange(4), valid_target=np.array([4, -1], np.int32),
                  test_target=np.array([5, -1], np.int32))
    pairs = {tuple(p) for p in cooccurrence_pairs(split, window=2).tolist()}
    assert pairs == {(0, 1), (1, 2), (0, 2)}  # never across users, never valid/test items


def test_adapter_starts_as_identity_and_learns(synthetic):
    data, split = synthetic
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(split.n_items, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    adapter, losses = fit_adapter(vectors, split)
    assert losses[-1] < losses[0]


def test_text_only_recommends_cold_items_and_beats_popularity(synthetic):
    data, split = synthetic
    from arborec.baselines import MostPop

    pop = evaluate(MostPop().fit(split), split, "valid").metrics["ndcg@10"]
    text = TextOnly(backend="torch").fit(split, data)
    assert evaluate(text, split, "valid").metrics["ndcg@10"] > 3 * pop
    # An item with no training events still gets a finite, meaningful score.
    counts = split.item_train_counts()
    from arborec.data import Histories

    scores = text.score(np.array([0]), Histories(np.array([0, 1]), np.array([int(np.argmax(counts))], np.int32)))
    assert np.isfinite(scores).all()


def test_finetuned_text_improves_on_synthetic(synthetic):
    data, split = synthetic
    plain = evaluate(TextOnly(backend="torch").fit(split, data), split, "valid").metrics["ndcg@10"]
    tuned = evaluate(FineTunedText(backend="torch").fit(split, data), split, "valid").metrics["ndcg@10"]
    assert tuned > plain
