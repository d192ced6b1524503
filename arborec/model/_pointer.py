"""The learned text pointer: a per-user, per-step gate between the model's next-item distribution and a
text-only one, with its text weight and temperature, trained end to end with the mixture likelihood."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

GATE_START = 0.1  # the gate's value for every user before training (the scale of the chosen pointer weights)
TEMPERATURE_START, TEMPERATURE_BOUNDS = 0.02, (0.005, 0.2)  # the pointer's softmax temperature, kept inside bounds
TEXT_WEIGHT_START = 4.0  # the text term's weight before training (the usual choice of the validated grid)


class TextPointer(nn.Module):
    """The learned parts of the text score: ``g = sigmoid(w . user + b)`` per user and step (in (0, 1)), the
    text term's weight ``softplus(rho)`` (>= 0) and the pointer's temperature (inside ``TEMPERATURE_BOUNDS``).

    The next-item distribution is ``(1 - g) softmax(user . item + text_weight * cos) + g q``, where ``q`` is a
    softmax of ``cos / temperature`` over the items outside the user's window and ``cos`` the cosine of an
    item's text vector with the user's recency-weighted window text vector."""

    def __init__(self, hidden_size: int, vectors: torch.Tensor):
        super().__init__()
        self.register_buffer("unit", F.normalize(vectors.float(), dim=1), persistent=False)  # (n_items, d) frozen
        self.gate = nn.Linear(hidden_size, 1)
        nn.init.zeros_(self.gate.weight)  # every user starts at GATE_START
        nn.init.constant_(self.gate.bias, math.log(GATE_START / (1 - GATE_START)))
        self.log_inv_temperature = nn.Parameter(torch.tensor(-math.log(TEMPERATURE_START)))
        self.text_weight_raw = nn.Parameter(torch.tensor(math.log(math.expm1(TEXT_WEIGHT_START))))  # softplus^-1

    def gate_logit(self, user: torch.Tensor) -> torch.Tensor:
        """(..., D) user states -> (...,) the gate's logit (g = sigmoid of it)."""
        return self.gate(user).squeeze(-1)

    def inv_temperature(self) -> torch.Tensor:
        lo, hi = (-math.log(t) for t in reversed(TEMPERATURE_BOUNDS))
        return self.log_inv_temperature.clamp(lo, hi).exp()

    def text_weight(self) -> torch.Tensor:
        return F.softplus(self.text_weight_raw)


def window_profiles(seq: torch.Tensor, mask: torch.Tensor, vectors: torch.Tensor, decay: float) -> torch.Tensor:
    """(B, W) left-padded item ids + 1, the (B, W) target mask, (n_items, d) text vectors -> (N, d) unit text
    profiles of the N target rows: at position t, the sum of the vectors of positions s <= t weighted
    ``decay ** (t - s)``, normalised (what :meth:`TextScoring._text_term` reads at the end of a window)."""
    W = seq.shape[1]
    cols = mask.any(0).nonzero().squeeze(1)  # (P,) the positions holding a target (the last one in prefix training)
    vec = F.embedding(seq, torch.cat([vectors.new_zeros(1, vectors.shape[1]), vectors]))  # (B, W, d), padding zero
    lag = cols[:, None] - torch.arange(W, device=seq.device)[None, :]  # (P, W): t - s
    decays = torch.where(lag >= 0, decay ** lag.clamp_min(0).to(vectors.dtype), vectors.new_zeros(()))  # (P, W)
    return F.normalize((decays @ vec)[mask[:, cols]], dim=-1)  # (N, d), rows in the order of mask.nonzero()


def window_items(seq: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, W) left-padded ids + 1 and the (B, W) target mask -> (N, W) 0-based items of each target row's
    window (positions <= the row's own), the padding filled with the row's most recent item (an item of the
    window, so that masking it again changes nothing)."""
    B, W = seq.shape
    b, t = mask.nonzero(as_tuple=True)  # (N,) each
    rows = seq[b]  # (N, W)
    later = torch.arange(W, device=seq.device)[None, :] > t[:, None]
    rows = torch.where(later | (rows == 0), seq[b, t][:, None], rows)
    return rows - 1


class _MixtureCE(torch.autograd.Function):
    """mean_n -log((1 - g_n) softmax(h_n W^T + lam c_n)[y_n] + g_n softmax(beta c_n, window out)[y_n]), by row
    chunks: the (N, n_items) cosines, logits and both softmaxes exist one chunk at a time, and every gradient
    is accumulated in the forward pass (as :class:`arborec.sequential._losses._FullSoftmaxCE` does).

    ``c = P U^T`` is the cosine of the rows' text profiles ``P`` (N, d) with the items' unit vectors ``U``;
    the text vectors are frozen (no gradient to ``P`` or ``U``). The model part's logit gradient is the usual
    ``softmax - onehot`` scaled by the row's responsibility ``r = (1 - g) s_y / p_y``; the gate's logit gets
    ``g - (1 - r)``, ``lam`` gets ``r (E_s[c] - c_y)`` and ``beta`` gets ``-(1 - r)(c_y - E_q[c])``."""

    @staticmethod
    def forward(ctx, h, weight, gate_logit, lam, beta, profiles, unit, target, window, chunk):
        grad_h, grad_w = torch.empty_like(h), torch.zeros_like(weight)
        grad_a, grad_lam, grad_beta = torch.empty_like(gate_logit), h.new_zeros(()), h.new_zeros(())
        loss = h.new_zeros(())
        for s in range(0, h.shape[0], chunk):
            hc, tc, ac = h[s:s + chunk], target[s:s + chunk, None], gate_logit[s:s + chunk]
            cos = profiles[s:s + chunk] @ unit.T  # (c, V)
            cos_y = cos.gather(1, tc).squeeze(1)
            soft = torch.addmm(cos, hc, weight.T, beta=float(lam))  # (c, V): logits h W^T + lam cos ...
            log_s = soft.gather(1, tc).squeeze(1) - _softmax_(soft)  # ... then their softmax, in place
            q = torch.mul(cos, beta).scatter_(1, window[s:s + chunk], -torch.inf)  # (c, V), the window's items out
            log_q = q.gather(1, tc).squeeze(1) - _softmax_(q)  # -inf when the target is in the window; q zero there
            log_model, log_text = F.logsigmoid(-ac) + log_s, F.logsigmoid(ac) + log_q
            log_p = torch.logaddexp(log_model, log_text)
            loss -= log_p.sum()
            r = torch.exp(log_model - log_p)  # (c,) the model part's responsibility for the target
            grad_lam += (r * (_rowdot(soft, cos) - cos_y)).sum()
            grad_beta -= ((1 - r) * (cos_y - _rowdot(q, cos))).sum()
            grad_a[s:s + chunk] = torch.sigmoid(ac) - (1 - r)
            soft.scatter_add_(1, tc, -torch.ones_like(tc, dtype=soft.dtype)).mul_(r[:, None])
            torch.mm(soft, weight, out=grad_h[s:s + chunk])
            grad_w.addmm_(soft.T, hc)
        ctx.save_for_backward(grad_h, grad_w, grad_a, grad_lam, grad_beta)
        ctx.n = max(h.shape[0], 1)
        return loss / ctx.n

    @staticmethod
    def backward(ctx, grad_out):
        scale = grad_out / ctx.n
        return tuple(g * scale for g in ctx.saved_tensors) + (None,) * 5


def _softmax_(x: torch.Tensor) -> torch.Tensor:
    """Turn the (c, V) rows of ``x`` into their softmax in place (one exp pass); returns their logsumexp (c,)."""
    top = x.amax(dim=1, keepdim=True)
    total = x.sub_(top).exp_().sum(dim=1, keepdim=True)
    x.div_(total)
    return (top + total.log()).squeeze(1)


def _rowdot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(c, V), (c, V) -> (c,) the dot product of each row pair, without a (c, V) product in between."""
    return torch.bmm(a[:, None, :], b[:, :, None]).view(-1)


def mixture_nll(h: torch.Tensor, weight: torch.Tensor, gate_logit: torch.Tensor, text_weight: torch.Tensor,
                inv_temperature: torch.Tensor, profiles: torch.Tensor, unit: torch.Tensor, target: torch.Tensor,
                window: torch.Tensor) -> torch.Tensor:
    """Mean -log p(target) under the pointer mixture (see :class:`TextPointer`), for N target rows: ``h`` (N, D)
    user states, ``weight`` (V, D) the item table, ``gate_logit`` (N,), the two scalars, ``profiles`` (N, d)
    unit text profiles, ``unit`` (V, d) unit item vectors, ``target`` (N,) and ``window`` (N, W) 0-based
    items that the pointer leaves out (see :func:`window_items`)."""
    if h.device.type != "cpu":  # on an accelerator: the plain autograd version (the (N, V) tensors fit)
        return _mixture_nll_plain(h, weight, gate_logit, text_weight, inv_temperature, profiles, unit, target, window)
    chunk = max(16, (1 << 20) // weight.shape[0])  # ~4 MB per (chunk, V) tensor: fewer passes over the text vectors
    return _MixtureCE.apply(h, weight, gate_logit, text_weight, inv_temperature, profiles, unit, target, window, chunk)


def _mixture_nll_plain(h, weight, gate_logit, text_weight, inv_temperature, profiles, unit, target, window):
    """:func:`mixture_nll` by plain autograd over whole (N, V) tensors (accelerators; the reference of tests)."""
    cos = profiles @ unit.T
    log_s = torch.log_softmax(h @ weight.T + text_weight * cos, dim=1)
    log_q = torch.log_softmax((cos * inv_temperature).scatter(1, window, -torch.inf), dim=1)
    y = target[:, None]
    log_p = torch.logaddexp(F.logsigmoid(-gate_logit) + log_s.gather(1, y).squeeze(1),
                            F.logsigmoid(gate_logit) + log_q.gather(1, y).squeeze(1))
    return -log_p.mean()
