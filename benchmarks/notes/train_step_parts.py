"""The training step before and after the 2026-12-03 changes (fused Adam, the item gate read block by block,
the level heads' loss on sibling groups), measured in one process on the same batches, configurations in
rotation (so machine noise and batch widths hit all alike). Validation and test are never read.

    ARBOREC_DATA_DIR=../shared/data python benchmarks/notes/train_step_parts.py amazon-beauty

Prints each part's old/new time (medians of 7 alternating repeats) and the whole step's median over 60
batches for old, new and the two mixed configurations; write-up: benchmarks/results/arborec_speed.md.
"""
import sys, time
import numpy as np, torch, torch.nn.functional as F
torch.set_num_threads(1)
from arborec.model import ArboRec
from arborec.data import leave_one_out, load_prepared
ds = sys.argv[1]
data = load_prepared(ds); split = leave_one_out(data)
m = ArboRec(max_len=50, dropout=0.4, lr=1e-3, seed=0); m._setup_fit(split, data)
m.n_items_ = split.n_items; m.module_ = m._build_module(split.n_items); m.module_.train()
enc = m.module_.items
def old_items():
    ids = enc.id_emb.weight[1:] * enc.seen[:, None]
    parts = [ids]
    if enc.cfg.use_text: parts.append(enc.text_proj(enc.vectors))
    if enc.cfg.use_tree: parts.append(sum(e(enc.codes[:, l]) for l, e in enumerate(enc.node_emb)))
    lg = enc.gate(torch.cat(parts, 1)).masked_fill((~enc.seen)[:, None] & (torch.arange(len(parts)) == 0), float("-inf"))
    w = torch.softmax(lg, 1)
    out = len(parts) * sum(w[:, p, None] * x for p, x in enumerate(parts))
    return torch.cat([out.new_zeros(1, out.shape[1]), out])
g = torch.randn(split.n_items + 1, 64)
def bwd(f): (f() * g).sum().backward()
heads = m.module_.heads
h = torch.randn(384, 64, requires_grad=True); codes = enc.codes[torch.randint(0, split.n_items, (384,))]
def heads_old(): sum(F.nll_loss(lp, codes[:, l]) for l, lp in enumerate(heads(h))).backward()
def heads_new(): sum(heads.nll(h, codes)).backward()
params = [p for p in m.module_.parameters()]
for p in params: p.grad = torch.randn_like(p)
o1 = torch.optim.Adam(params, lr=1e-6); o2 = torch.optim.Adam(params, lr=1e-6, fused=True)
pairs = {"items": (lambda: bwd(old_items), lambda: bwd(enc)), "heads": (heads_old, heads_new), "adam": (o1.step, o2.step)}
res = {k: ([], []) for k in pairs}
for rep in range(7):
    for k, (a, b) in pairs.items():
        for i, f in ((0, a), (1, b)) if rep % 2 == 0 else ((1, b), (0, a)):
            t0 = time.perf_counter()
            for _ in range(10): f()
            res[k][i].append((time.perf_counter() - t0) / 10 * 1e3)
for k, (a, b) in res.items():
    print(ds, k, "old %.2f ms  new %.2f ms  ratio old/new %.2f" % (np.median(a), np.median(b), np.median(a) / np.median(b)))
from arborec.sequential._windows import batch_order
inputs, targets = m._training_pairs(split); lengths = (inputs > 0).sum(1)
batches = batch_order(lengths, 128, np.random.default_rng(0))[:200]
it, tt = torch.from_numpy(inputs), torch.from_numpy(targets)
real_fwd = enc.forward
parts_t = {k: [] for k in ("old", "new", "oldadam_newitems", "newadam_olditems")}
def step(idx, opt, name="x"):
    t0 = time.perf_counter()
    w = int(lengths[idx].max()); loss, n = m._loss(it[idx, -w:], tt[idx, -w:]); t1 = time.perf_counter(); opt.zero_grad(); loss.backward(); t2 = time.perf_counter(); opt.step()
    t3 = time.perf_counter()
    if name in parts_t: parts_t[name].append((t1 - t0, t2 - t1, t3 - t2))
import arborec.model._network as N
real_nll = N.LevelHeads.nll
def old_nll(self, h, codes): return [F.nll_loss(lp, codes[:, l]) for l, lp in enumerate(self(h))]
oldf = lambda rows=None: old_items() if rows is None else real_fwd(rows)
cfgs = {"old": (o1, oldf, old_nll), "new": (o2, real_fwd, real_nll), "oldadam_newitems": (o1, real_fwd, real_nll), "newadam_olditems": (o2, oldf, old_nll)}
times = {k: [] for k in cfgs}
names = list(cfgs)
for i, idx in enumerate(batches[:60]):
    for j in range(len(names)):
        name = names[(i + j) % len(names)]
        opt, fwd, nll = cfgs[name]
        enc.forward = fwd; N.LevelHeads.nll = nll
        t0 = time.perf_counter(); step(idx, opt, name); times[name].append(time.perf_counter() - t0)
print(ds, "whole step old %.1f ms new %.1f ms ratio %.2f" % (np.median(times["old"][5:]) * 1e3, np.median(times["new"][5:]) * 1e3, np.median(times["old"][5:]) / np.median(times["new"][5:])))
for k, v in parts_t.items():
    a = np.median(np.array(v[5:]), axis=0) * 1e3
    print(ds, k, "forward %.1f backward %.1f adam %.1f ms" % tuple(a))
