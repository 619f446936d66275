"""Paper claims of boundary attributions (Wang, Fredrikson & Datta, ICML 2022), measured.

Every map explains the model's predicted class (``target_policy``: predicted; the fraction is
recorded). A seed s draws the samples (MNIST test digits, grid and cluttered canvases) and
seeds every stochastic part (the noise baseline; the boundary search's random start where
the sweep runs — the default engine, FMN, is deterministic).
Verdicts come from :mod:`faithmap.evaluation.verdicts`: paired per sample, a comparison
holds only when its 95 % interval over seeds × samples excludes 0 and every seed agrees.

1. BIG is more concentrated than IG: sparseness (Gini) on MNIST test digits with
   ``mnist_vgg``; pointing game, energy pointing game and sparseness on the ``grid`` and
   ``cluttered`` benchmarks with ``mnist_allconv`` (56×56 canvases: ``mnist_vgg``'s fully
   connected head only takes 28×28). On the grid the mask is the cell holding the predicted
   digit (canvases whose prediction is in no cell, or not the cluttered digit, are skipped).
2. BIG is less sensitive to the baseline than IG — like for like: the same three baselines
   b ∈ {zeros, blurred x, uniform noise (seed s)} enter both methods, IG as its path start,
   BIG as the start of its boundary search (``find_boundary(start=b)``: FMN warm-starts from
   the bisection point between x and b where b is already on the other side, from b
   otherwise; then BIG integrates from the boundary point found to x). Per sample: mean pairwise
   Spearman rank correlation of the three maps (higher = less sensitive).
3. For the adversarially trained ``mnist_vgg_robust`` the plain gradient is closer to BSM
   (cosine similarity) than for the standard ``mnist_vgg`` (the same digits, paired).

Budget: at ``--n 8 --seeds 3`` (the ``make claims`` setting) seven default boundary searches
of 8 samples per seed; about 7 minutes on one shared thread with the default FMN engine
(run time is printed and recorded).

    python benchmarks/claims_boundary.py [--n 8] [--seeds 3] [--out docs/claims/boundary.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
import warnings

import torch
import torch.nn.functional as F

import faithmap as fm
from faithmap.core.files import atomic_write_bytes
from faithmap.evaluation import load_eval_data
from faithmap.evaluation.verdicts import claim_verdict, compare, summarise

PAPER = "Boundary attributions (Wang, Fredrikson & Datta, ICML 2022)"
OPTS = {"batch_size": 512}
SOURCE = "benchmarks/claims_boundary.py"


def predicted(model, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(x).argmax(1)


def grid_data(model, n: int, seed: int):
    """Grid canvases (seed) whose predicted digit is in a cell; the mask is that cell."""
    bench = fm.data.grid("mnist", n=2, count=3 * n, split="test", seed=seed)
    pred = predicted(model, bench.images)
    hit = bench.labels == pred[:, None]
    keep = torch.nonzero(hit.any(1)).flatten()[:n]
    cell = hit[keep].int().argmax(1)
    return (bench.images[keep], pred[keep], bench.masks[keep, cell][:, None].bool(),
            float(hit.any(1).float().mean()))


def cluttered_data(model, n: int, seed: int):
    """Cluttered canvases (seed) whose prediction is the digit; the mask is its ink."""
    bench = fm.data.cluttered("mnist", canvas=56, count=3 * n, split="test", seed=seed)
    pred = predicted(model, bench.images)
    keep = torch.nonzero(pred == bench.labels).flatten()[:n]
    masks = bench.masks[keep].bool().view(len(keep), 1, *bench.images.shape[-2:])
    return bench.images[keep], pred[keep], masks, float((pred == bench.labels).float().mean())


def blur(x: torch.Tensor) -> torch.Tensor:
    k = torch.tensor([1, 4, 6, 4, 1], dtype=x.dtype)
    k = (k[:, None] * k[None]) / 256
    w = k.expand(x.shape[1], 1, 5, 5).contiguous()
    out = x
    for _ in range(3):
        out = F.conv2d(F.pad(out, (2, 2, 2, 2), mode="replicate"), w, groups=x.shape[1])
    return out


def spearman(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    ra = a.flatten(1).argsort(1).argsort(1).double()
    rb = b.flatten(1).argsort(1).argsort(1).double()
    ra, rb = ra - ra.mean(1, keepdim=True), rb - rb.mean(1, keepdim=True)
    return (ra * rb).sum(1) / (ra.norm(dim=1) * rb.norm(dim=1))


def mean_pairwise(maps: list[torch.Tensor]) -> torch.Tensor:
    """Per sample: mean Spearman correlation over the pairs of maps (NaN where a map is)."""
    rho = torch.stack([spearman(a, b) for a, b in itertools.combinations(maps, 2)])
    bad = torch.stack([~torch.isfinite(m.flatten(1)).all(1) for m in maps]).any(0)
    return torch.where(bad, torch.nan, rho.mean(0))


def cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return F.cosine_similarity(a.flatten(1), b.flatten(1), dim=1)


def measure(seed: int, n: int, models: dict) -> dict:
    """Per-sample scores of one seed: {key: tensor (samples,)}, plus bookkeeping."""
    vgg, allconv, robust = models["mnist_vgg"], models["mnist_allconv"], models["robust"]
    out: dict[str, torch.Tensor] = {}
    info: dict[str, object] = {"no_boundary": 0}

    def big(model, x, y, **kw):
        e = fm.BoundaryIntegratedGradients(model, seed=seed, **OPTS, **kw)
        a = e(x, y)
        info["no_boundary"] = int(info["no_boundary"]) + len(e.metadata["fallback_samples"])
        return a, e

    # 1. concentration
    x = load_eval_data("mnist", n=n, seed=seed).images
    y = predicted(vgg, x)
    ig_map = fm.IntegratedGradients(vgg, **OPTS)(x, y)
    big_map, _ = big(vgg, x, y)
    out["mnist/sparseness/IG"] = fm.metrics.sparseness(ig_map)
    out["mnist/sparseness/BIG"] = fm.metrics.sparseness(big_map)
    fractions = {"mnist": float((predicted(vgg, x) == y).float().mean())}
    kept = {}
    for name, loader in (("grid", grid_data), ("cluttered", cluttered_data)):
        images, target, masks, share = loader(allconv, n, seed)
        kept[name] = share
        fractions[name] = float((predicted(allconv, images) == target).float().mean())
        maps = {"IG": fm.IntegratedGradients(allconv, **OPTS)(images, target),
                "BIG": big(allconv, images, target)[0]}
        for label, a in maps.items():
            for metric in ("pointing_game", "energy_pointing_game", "sparseness"):
                fn = fm.metrics.get_metric(metric)
                s = fn(a) if metric == "sparseness" else fn(a, masks)
                out[f"{name}/{metric}/{label}"] = s.double().reshape(-1)

    # 2. baseline sensitivity, like for like: the same three baselines for IG and BIG
    noise = torch.rand(x.shape, generator=torch.Generator().manual_seed(seed))
    baselines = {"zeros": torch.zeros_like(x), "blur": blur(x), "noise": noise}
    igs = [fm.IntegratedGradients(vgg, baseline=b, **OPTS)(x, y) for b in baselines.values()]
    bigs = [big(vgg, x, y, search_options={"start": b})[0] for b in baselines.values()]
    out["mnist/sensitivity/IG"] = mean_pairwise(igs)
    out["mnist/sensitivity/BIG"] = mean_pairwise(bigs)

    # 3. robust vs standard: cosine(gradient, BSM), the same digits
    for key, model in (("standard", vgg), ("robust", robust)):
        yk = predicted(model, x)
        g = fm.Saliency(model, abs=False, **OPTS)(x, yk)
        e = fm.BoundarySaliency(model, seed=seed, **OPTS)
        bsm = e(x, yk)
        margin = fm.BoundarySaliency(model, objective="margin", seed=seed, **OPTS)(x, yk)
        out[f"mnist/cos_bsm/{key}"] = cosine(g, bsm)
        out[f"mnist/cos_margin_bsm/{key}"] = cosine(g, margin)
        out[f"mnist/distance/{key}"] = torch.tensor(e.metadata["distances"], dtype=torch.float64)
    return {"scores": out, "predicted_fraction": fractions, "kept_fraction": kept, **info}


def rows_of(per_seed: list[dict], key: str) -> list[list[float]]:
    return [s["scores"][key].double().tolist() for s in per_seed]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=8, help="samples per seed and dataset")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", default="docs/claims/boundary.json")
    args = parser.parse_args()
    warnings.simplefilter("ignore", RuntimeWarning)  # no-boundary rows are counted instead
    start, seeds = time.time(), list(range(args.seeds))
    models = {"mnist_vgg": fm.zoo.load("mnist_vgg"), "mnist_allconv": fm.zoo.load("mnist_allconv"),
              "robust": fm.zoo.load("mnist_vgg_robust")}
    per_seed = []
    for s in seeds:
        per_seed.append(measure(s, args.n, models))
        print(f"seed {s} done ({time.time() - start:.0f} s)", flush=True)

    claims, comparisons, table = [], {}, []

    def claim(text: str, items: list[tuple[str, str, str, object]]) -> None:
        comparisons[text] = {label: d.as_dict() for label, _, _, d in items}
        claims.append({"paper": PAPER, "claim": text,
                       "measured": "; ".join(f"{label}: {d.text(a, b)}"
                                             for label, a, b, d in items)
                       + f" (n={args.n} per seed × {len(seeds)} seeds)",
                       "verdict": claim_verdict(d.outcome for *_, d in items),
                       "source": SOURCE})

    def pair(key_a: str, key_b: str, label: str, model: str, a="BIG", b="IG"):
        d = compare(rows_of(per_seed, key_a), rows_of(per_seed, key_b))
        table.append(f"| {label} ({model}) | {d.mean_b:.3f} ± {d.spread_b:.3f} | "
                     f"{d.mean_a:.3f} ± {d.spread_a:.3f} | {d.diff:+.3f} [{d.low:+.3f}, "
                     f"{d.high:+.3f}] | {d.outcome} | {d.n_samples} |")
        return label, a, b, d

    conc = [pair("mnist/sparseness/BIG", "mnist/sparseness/IG", "mnist sparseness",
                 "mnist_vgg")]
    for data in ("grid", "cluttered"):
        for metric in ("pointing_game", "energy_pointing_game", "sparseness"):
            conc.append(pair(f"{data}/{metric}/BIG", f"{data}/{metric}/IG",
                             f"{data} {metric}", "mnist_allconv"))
    claim("BIG is more concentrated than IG (sparseness, localisation)", conc)
    sens = [pair("mnist/sensitivity/BIG", "mnist/sensitivity/IG",
                 "mean pairwise Spearman across zeros / blur / noise baselines", "mnist_vgg")]
    claim("BIG is less sensitive to the baseline choice than IG (the same three baselines: "
          "IG's path start, BIG's boundary-search start)", sens)
    rob = [pair("mnist/cos_bsm/robust", "mnist/cos_bsm/standard", "cosine(gradient, BSM)",
                "mnist_vgg_robust vs mnist_vgg", "robust", "standard"),
           pair("mnist/cos_margin_bsm/robust", "mnist/cos_margin_bsm/standard",
                "cosine(gradient, margin BSM)", "mnist_vgg_robust vs mnist_vgg", "robust",
                "standard")]
    claim("for an adversarially trained model the plain gradient is closer to BSM (cosine "
          "similarity) than for a standard model", rob[:1])
    extra = []
    for key, name in (("standard", "mnist_vgg"), ("robust", "mnist_vgg_robust")):
        mean, half = summarise(rows_of(per_seed, f"mnist/distance/{key}"))
        extra.append(f"| boundary L2 distance ({name}) | {mean:.3f} ± {half:.3f} |")

    fractions = {d: sum(s["predicted_fraction"][d] for s in per_seed) / len(per_seed)
                 for d in per_seed[0]["predicted_fraction"]}
    kept = {d: sum(s["kept_fraction"][d] for s in per_seed) / len(per_seed)
            for d in per_seed[0]["kept_fraction"]}
    missing = sum(int(s["no_boundary"]) for s in per_seed)
    seconds = time.time() - start
    text = ("| comparison (model) | IG (or standard) | BIG (or robust) | difference [95 % CI] "
            "| outcome | pairs |\n|---|---|---|---|---|---|\n" + "\n".join(table)
            + "\n\n| context | mean ± 95 % half-width |\n|---|---|\n" + "\n".join(extra)
            + f"\n\nn = {args.n} samples per seed and dataset, seeds {seeds}; mean ± 95 % "
            f"half-width over seeds × samples; differences paired per sample (BIG − IG, "
            f"robust − standard), outcome by faithmap.evaluation.verdicts. Every map "
            f"explains the predicted class (predicted fraction {fractions}); grid/cluttered "
            f"canvases usable (prediction in a cell / = the digit): "
            f"{ {k: round(v, 3) for k, v in kept.items()} }. Rows without a boundary "
            f"(NaN maps, dropped from the pairs): {missing}. Run time {seconds:.0f} s.")
    doc = {"command": f"python benchmarks/claims_boundary.py --n {args.n} --seeds {args.seeds}",
           "seeds": seeds, "n": args.n, "target_policy": "predicted",
           "predicted_fraction": fractions, "kept_fraction": kept,
           "no_boundary_rows": missing, "seconds": round(seconds),
           "claims": claims, "comparisons": comparisons, "tables": text}
    atomic_write_bytes(args.out, (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode())
    print(text)
    for c in claims:
        print(f"- [{c['verdict']}] {c['claim']}: {c['measured']}")


if __name__ == "__main__":
    main()
