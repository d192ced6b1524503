"""The arborec network: fused item table, long (GRU) and short (causal attention) user streams, tree-level heads."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from arborec.baselines.sasrec import Block, SASRecConfig
from arborec.sequential import causal_mask, init_weights


@dataclass
class ArboRecConfig:
    n_items: int  # catalogue size; item i is row i + 1 of every item table (row 0 = padding)
    level_sizes: list[int] = field(default_factory=list)  # nodes per tree level, coarse to fine
    text_dim: int = 384  # width of the frozen language-model vectors
    max_len: int = 50  # the short-term window (attention) and the training window
    hidden_size: int = 64  # D
    n_layers: int = 2  # attention blocks of the short-term stream
    n_heads: int = 1
    gru_layers: int = 1  # recurrent layers of the long-term stream
    dropout: float = 0.2
    id_dropout: float = 0.0  # training only: share of items whose ID part is hidden per step (as if unseen)
    use_id: bool = True  # the item's own ID embedding in the fused item table
    use_text: bool = True  # the projected language-model vector
    use_tree: bool = False  # the embeddings of the item's tree-path nodes (on by default only without text)
    use_long: bool = True  # the recurrent long-term stream
    use_short: bool = True  # the attention short-term stream
    use_heads: bool = True  # the per-level interest heads (read the user states; they do not rank)


class ItemEncoder(nn.Module):
    """Every item's representation (n_items + 1, D): a per-item gated mix of its ID, text and tree parts.

    ``gate = softmax(W [id; text; tree])`` weighs the parts that are on, per item; the tree part is the sum
    of the embeddings of the item's path nodes (``codes``). An item not ``seen`` (no training events) has
    its ID part masked out, so a brand-new item is represented from its text (and path) alone. In training,
    ``id_dropout`` hides the ID part of a random share of items at every step, so that the other parts
    learn to stand in for it (cold start). ``codes`` is also what the level heads learn.
    """

    def __init__(self, cfg: ArboRecConfig, vectors: torch.Tensor, codes: torch.Tensor, seen: torch.Tensor):
        super().__init__()
        self.cfg = cfg
        D = cfg.hidden_size
        self.register_buffer("vectors", vectors.float(), persistent=False)  # (n_items, text_dim), frozen
        self.register_buffer("codes", codes.long(), persistent=False)  # (n_items, L)
        self.register_buffer("seen", seen.bool(), persistent=False)  # (n_items,) has training events
        self.id_emb = nn.Embedding(cfg.n_items + 1, D, padding_idx=0)
        self.text_proj = nn.Linear(cfg.text_dim, D)
        if cfg.use_tree:
            self.node_emb = nn.ModuleList(nn.Embedding(n, D) for n in cfg.level_sizes)
        self.parts = [p for p, on in (("id", cfg.use_id), ("text", cfg.use_text), ("tree", cfg.use_tree)) if on]
        assert self.parts, "at least one of use_id, use_text, use_tree"
        self.gate = nn.Linear(len(self.parts) * D, len(self.parts)) if len(self.parts) > 1 else None

    def forward(self, rows: torch.Tensor | None = None) -> torch.Tensor:
        """The fused table (n_items + 1, D), row 0 = padding; or, given item ``rows`` (R,) (0-based),
        only those items' representations (R, D) (sampled-softmax training on large catalogues)."""
        if rows is None:
            items = self._fuse(self.id_emb.weight[1:], self.vectors, self.codes, self.seen)  # (n_items, D)
            return torch.cat([items.new_zeros(1, items.shape[1]), items])
        return self._fuse(self.id_emb(rows + 1), self.vectors[rows], self.codes[rows], self.seen[rows])

    def _fuse(self, ids: torch.Tensor, vectors: torch.Tensor, codes: torch.Tensor, seen: torch.Tensor) -> torch.Tensor:
        """(R, D), (R, text_dim), (R, L), (R,) of R items -> their fused representations (R, D).

        The gate's logits are ``W [parts] + b`` read block by block (no concatenated copy), and two parts mix
        as ``2 * lerp(first, second, w_second)``: the same values as the softmax-weighted sum in fewer
        passes over the (R, D) table, which a training step computes for the whole catalogue."""
        parts = []
        if self.cfg.use_id:
            parts.append(ids * seen[:, None])  # (R, D), zero for unseen items
        if self.cfg.use_text:
            parts.append(self.text_proj(vectors))  # (R, D)
        if self.cfg.use_tree:
            parts.append(sum(emb(codes[:, level]) for level, emb in enumerate(self.node_emb)))  # (R, D)
        if self.gate is None:
            return parts[0]
        D, weight = parts[0].shape[1], self.gate.weight  # weight (P, P * D)
        logits = self.gate.bias.expand(len(seen), -1)  # (R, P)
        for p, x in enumerate(parts):
            logits = torch.addmm(logits, x, weight[:, p * D:(p + 1) * D].T)
        if self.cfg.use_id:  # unseen items (and, in training, id-dropped ones): no ID part
            hidden = ~seen
            if self.training and self.cfg.id_dropout > 0:
                hidden = hidden | (torch.rand(len(hidden), device=hidden.device) < self.cfg.id_dropout)
            logits = logits.masked_fill(hidden[:, None] & (torch.arange(len(parts), device=logits.device) == 0),
                                        float("-inf"))
        w = torch.softmax(logits, dim=1)  # (R, P)
        if len(parts) == 2:
            return 2 * torch.lerp(parts[0], parts[1], w[:, 1:])  # (R, D)
        return len(parts) * sum(w[:, p, None] * x for p, x in enumerate(parts))  # (R, D)


class LevelHeads(nn.Module):
    """Per-level log-distributions over tree nodes, coarse to fine.

    Level 1 is a softmax over its nodes; level l + 1 is ``log P(parent) + log P(child | parent)``,
    the child distribution being a softmax among siblings, so every level's distribution is the
    marginal of the next one.
    """

    def __init__(self, hidden_size: int, level_sizes: list[int], parents: list[torch.Tensor]):
        super().__init__()
        self.heads = nn.ModuleList(nn.Linear(hidden_size, n) for n in level_sizes)
        for level, p in enumerate(parents):
            if level:  # one-hot (n_{l-1}, n_l) parent matrix: gathers and group sums become matmuls (fast on CPU)
                onehot = F.one_hot(p.long(), level_sizes[level - 1]).T.float()
                self.register_buffer(f"up_{level}", onehot, persistent=False)
                self.register_buffer(f"siblings_{level}", _sibling_table(p.long(), level_sizes[level - 1]), persistent=False)
        self.level_sizes = list(level_sizes)

    def forward(self, h: torch.Tensor) -> list[torch.Tensor]:
        """h (..., D) -> list of L log-probabilities (..., n_nodes_l)."""
        out = []
        for level, head in enumerate(self.heads):
            logits = head(h)  # (..., n_l)
            if level == 0:
                out.append(torch.log_softmax(logits, dim=-1))
                continue
            up = getattr(self, f"up_{level}")  # (n_{l-1}, n_l): up[p, c] = 1 when p is c's parent
            m = logits.max(dim=-1, keepdim=True).values.detach()  # (..., 1)
            lse = torch.log((torch.exp(logits - m) @ up.T).clamp_min(1e-30)) + m  # (..., n_{l-1}) per sibling group
            out.append((out[-1] - lse) @ up + logits)  # log P(parent) + log P(child | parent), (..., n_l)
        return out

    def nll(self, h: torch.Tensor, codes: torch.Tensor) -> list[torch.Tensor]:
        """h (N, D), codes (N, L) -> per level, the mean of -log P(codes[:, l]) under :meth:`forward` (what
        ``F.nll_loss`` of its output gives), reading only each row's own sibling group: O(D n_l) per row
        instead of the parent matmuls' O(n_{l-1} n_l), which dominate on trees of a thousand leaves."""
        out, chain = [], 0.0
        for level, head in enumerate(self.heads):
            logits = head(h)  # (N, n_l)
            c = codes[:, level]
            if level == 0:
                group = torch.logsumexp(logits, dim=1)  # (N,)
            else:
                sib = getattr(self, f"siblings_{level}")[codes[:, level - 1]]  # (N, max siblings), -1 = none
                group = torch.logsumexp(logits.gather(1, sib.clamp_min(0)).masked_fill(sib < 0, float("-inf")), dim=1)
            chain = chain + logits.gather(1, c[:, None]).squeeze(1) - group  # log P(path down to level l)
            out.append(-chain.mean())
        return out


def _sibling_table(parent: torch.Tensor, n_parents: int) -> torch.Tensor:
    """(n_parents, most children) child ids of each parent node, padded with -1."""
    counts = torch.bincount(parent, minlength=n_parents)
    table = torch.full((n_parents, int(counts.max())), -1, dtype=torch.long)  # every level has children
    order = torch.argsort(parent, stable=True)
    rank = torch.arange(len(parent)) - (torch.cumsum(counts, 0) - counts)[parent[order]]
    table[parent[order], rank] = order
    return table


class ArboRecModule(nn.Module):
    """Left-padded item ids (B, W) -> fused user states (B, W, D); position t sees positions <= t only."""

    def __init__(self, cfg: ArboRecConfig, vectors: torch.Tensor, codes: torch.Tensor, seen: torch.Tensor,
                 parents: list[torch.Tensor]):
        super().__init__()
        assert cfg.use_long or cfg.use_short, "at least one of use_long, use_short"
        self.cfg = cfg
        D = cfg.hidden_size
        self.items = ItemEncoder(cfg, vectors, codes, seen)
        self.dropout = nn.Dropout(cfg.dropout)
        # short-term stream: SASRec's pre-LN causal blocks over the recent window
        scfg = SASRecConfig(n_items=cfg.n_items, max_len=cfg.max_len, hidden_size=D, n_layers=cfg.n_layers,
                            n_heads=cfg.n_heads, dropout=cfg.dropout)
        self.pos_emb = nn.Embedding(cfg.max_len, D)  # counted from the right
        self.blocks = nn.ModuleList(Block(scfg) for _ in range(cfg.n_layers))
        self.ln_short = nn.LayerNorm(D)
        # long-term stream: a GRU over the whole history, advanced one event at a time when serving
        self.gru = nn.GRU(D, D, num_layers=cfg.gru_layers, batch_first=True,
                          dropout=cfg.dropout if cfg.gru_layers > 1 else 0.0)
        self.long_out = nn.Linear(D, D)
        self.ln_long = nn.LayerNorm(D)
        # per-user, per-step gate between the two streams
        self.fuse = nn.Linear(2 * D, D)
        self.heads = LevelHeads(D, cfg.level_sizes, parents) if cfg.use_heads and cfg.level_sizes else None
        self.apply(init_weights)

    # -- the two streams ---------------------------------------------------------------------
    def embed(self, seq: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        """(B, W) ids + 1 -> (B, W, D) input embeddings (padding rows are zero)."""
        return F.embedding(seq, table) * math.sqrt(self.cfg.hidden_size)

    def short_stream(self, seq: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        """(B, W) -> (B, W, D), causal self-attention; W <= max_len."""
        B, W = seq.shape
        real = seq > 0  # (B, W)
        pos = torch.arange(self.cfg.max_len - W, self.cfg.max_len, device=seq.device)  # (W,)
        x = self.dropout(self.embed(seq, table) + self.pos_emb(pos)) * real.unsqueeze(-1)  # (B, W, D)
        allowed = causal_mask(real)  # (B, 1, W, W)
        for block in self.blocks:
            x = block(x, allowed)
        return self.ln_short(x)  # (B, W, D)

    def gru_inputs(self, seq: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.embed(seq, table))  # (B, W, D)

    def long_stream(self, seq: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        """(B, W) -> (B, W, D) raw GRU outputs (left-padded like the input; the padding is skipped)."""
        B, W = seq.shape
        lengths = (seq > 0).sum(1).clamp(min=1)  # (B,)
        cols = torch.arange(W, device=seq.device)
        src = (cols[None, :] + (W - lengths)[:, None]) % W  # left- -> right-padded
        x = self.gru_inputs(seq.gather(1, src), table)  # (B, W, D)
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        h, _ = self.gru(packed)
        h, _ = pad_packed_sequence(h, batch_first=True, total_length=W)  # (B, W, D) right-padded
        back = (cols[None, :] - (W - lengths)[:, None]) % W
        return h.gather(1, back.unsqueeze(-1).expand(-1, -1, h.shape[-1]))  # (B, W, D) left-padded

    def long_repr(self, gru_out: torch.Tensor) -> torch.Tensor:
        return self.ln_long(self.long_out(self.dropout(gru_out)))  # (..., D)

    def fuse_streams(self, long: torch.Tensor | None, short: torch.Tensor | None) -> torch.Tensor:
        """Gate g = sigmoid(W [long; short]) per user, step and dimension; user = g * long + (1 - g) * short."""
        if long is None:
            return short
        if short is None:
            return long
        g = torch.sigmoid(self.fuse(torch.cat([long, short], dim=-1)))  # (..., D)
        return g * long + (1 - g) * short

    def forward(self, seq: torch.Tensor, table: torch.Tensor | None = None):
        """(B, W) -> (user (B, W, D), long (B, W, D) or None, short (B, W, D) or None, item table)."""
        table = self.items() if table is None else table  # (n_items + 1, D)
        long = self.long_repr(self.long_stream(seq, table)) if self.cfg.use_long else None
        short = self.short_stream(seq, table) if self.cfg.use_short else None
        return self.fuse_streams(long, short), long, short, table
