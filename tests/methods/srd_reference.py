"""A slow, literal per-kernel-tap SRD reference (loops over taps and output positions).

c_{q→p} = W_k v_q + b · ||W_k v_q|| / Σ_k ||W_k v_q||,  μ_{q→p} = <c_{q→p}, z_p>/||z_p||²,
R_q = Σ_p μ_{q→p} R_p. With a max-pool before the conv, the pooled PFV x_{q'} is split by
its window routing: the part from pre-pool q is M_q ⊙ x_{q'} (the channels whose argmax is
q); its bias share is the tap's share times ||M_q x_{q'}||² / ||x_{q'}||² (a zero pooled PFV
hands it to channel 0's argmax). Where every tap of an output position sees a zero PFV, the
bias share is split equally over the in-image taps (carried, not dropped). ``eps`` is added
to ||z_p||² (0: exact, 0 where z_p = 0).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def conv_literal(x, weight, bias, stride, padding, z, rel, eps=1e-9, pool=None):
    """Relevance at the conv input positions (or pre-pool positions when ``pool`` is given).

    x: N×C×H×W conv input; z: N×O×Ho×Wo the pre-activation (target vectors); rel: N×Ho×Wo.
    pool: (v, kernel) — x = max_pool2d(v, kernel), routing from the forward argmax.
    """
    n, c, h, w = x.shape
    o, _, kh, kw = weight.shape
    zz = z.pow(2).sum(1) + eps
    zz = torch.where(zz > 0, zz, torch.full_like(zz, float("inf")))
    if pool is not None:
        v, kp = pool
        _, idx = F.max_pool2d(v, kp, return_indices=True)
        out_rel = torch.zeros(n, v.shape[2] * v.shape[3], dtype=x.dtype)
    else:
        out_rel = torch.zeros(n, h * w, dtype=x.dtype)
    ho, wo = z.shape[2:]
    for s in range(n):
        for pi in range(ho):
            for pj in range(wo):
                taps = []
                for ki in range(kh):
                    for kj in range(kw):
                        qi, qj = pi * stride - padding + ki, pj * stride - padding + kj
                        if 0 <= qi < h and 0 <= qj < w:
                            taps.append((qi, qj, weight[:, :, ki, kj]))
                norms = [torch.linalg.norm(wk @ x[s, :, qi, qj]) for qi, qj, wk in taps]
                total = sum(norms)
                for (qi, qj, wk), nk in zip(taps, norms):
                    share = nk / total if total > 0 else 1.0 / len(taps)  # carried
                    xq = x[s, :, qi, qj]
                    if pool is None:
                        cq = wk @ xq + bias * share
                        mu = (cq @ z[s, :, pi, pj]) / zz[s, pi, pj]
                        out_rel[s, qi * w + qj] += mu * rel[s, pi, pj]
                        continue
                    src = idx[s, :, qi, qj]  # flat pre-pool index per channel
                    for q in src.unique():
                        mask = (src == q).to(x.dtype)
                        part = mask * xq
                        if xq.pow(2).sum() > 0:
                            frac = part.pow(2).sum() / xq.pow(2).sum()
                        else:
                            frac = float(q == src[0])
                        cq = wk @ part + bias * share * frac
                        mu = (cq @ z[s, :, pi, pj]) / zz[s, pi, pj]
                        out_rel[s, int(q)] += mu * rel[s, pi, pj]
    shape = (n, *pool[0].shape[2:]) if pool is not None else (n, h, w)
    return out_rel.view(shape)


def identity_literal(x, z, rel, eps=1e-9):
    """Identity skip: μ_q = <x_q, z_q>/||z_q||²."""
    zz = z.pow(2).sum(1) + eps
    return (x * z).sum(1) / torch.where(zz > 0, zz, torch.full_like(zz, float("inf"))) * rel
