"""The sequential training core shared by the next-item models (SASRec, GRU4Rec, BSARec, the text-aware
peers and ArboRec): training windows, the full-softmax loss, the training loop with early stopping.

A sequential model here is any ``nn.Module`` with

* ``item_emb``: ``nn.Embedding(n_items + 1, hidden_size, padding_idx=0)``, item ``i`` at row ``i + 1``;
* ``forward(seq) -> (B, L, D)``: one hidden state per position of a left-padded (B, L) int64 batch
  (item ids + 1, 0 = padding), where position ``t`` sees only positions ``<= t``.

The score of item ``i`` after position ``t`` is ``hidden[t] . item_emb[i + 1]`` (output layer tied to
the input embedding). Training is next-item prediction with a full softmax over the catalogue at
every non-padding position (above ``sampled_above`` items: a sampled softmax, log-q corrected, so no
(positions, n_items) block is ever formed); the rest (data, batches, early stopping on validation NDCG@10, the
best weights) is :meth:`SequentialRecommender.fit`.

Three hooks let a model differ without its own loop: ``_training_pairs`` (the epoch's data: windows
trained at every position, or :func:`prefix_windows`, one example per target, for an encoder whose
positions see later ones, such as BSARec's Fourier filter), ``_output_items`` (the tied output table,
e.g. built from text vectors) and ``_last_hidden`` (the state that scores the next item).

Modules: ``_attention`` (the causal attention mask), ``_windows`` (histories -> left-padded training windows, batches), ``_losses`` (the fused
full-softmax cross-entropy), ``_recommender`` (:class:`SequentialRecommender`: the loop, the sampled
softmax, scoring), ``_resume`` (a loop's whole state in one file: a stopped fit continues; :func:`resuming`).
"""

from arborec.sequential._attention import causal_mask
from arborec.sequential._init import init_weights
from arborec.sequential._losses import full_softmax_cross_entropy
from arborec.sequential._recommender import SequentialRecommender, adam
from arborec.sequential._resume import resuming
from arborec.sequential._windows import batch_order, pad_left, prefix_windows, training_windows

__all__ = ["SequentialRecommender", "adam", "causal_mask", "init_weights", "batch_order", "full_softmax_cross_entropy", "pad_left", "prefix_windows",
           "resuming", "training_windows"]
