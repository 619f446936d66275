"""NeFLAG's paper claims (issue 8) on our benchmarks: insertion − deletion AUC.

Li et al. (IJCAI 2023) report, on ImageNet, that NeFLAG-20 ≥ NeFLAG-10 ≥ NeFLAG-1 and that
NeFLAG beats Integrated Gradients and SmoothGrad on the area under the insertion curve minus
the area under the deletion curve. We check both with ``fm.metrics.insertion_deletion``
(insertion into a blurred image minus deletion to zeros, target probability, ~224 steps)
on three of our benchmarks, the first ``--n`` samples each, the true labels as targets:
- ``mnist``: MNIST test digits (28²) with the zoo's ``mnist_vgg``;
- ``grid``, ``cluttered``: 56² benchmarks with ``mnist_resnet`` (``mnist_vgg`` takes 28² only).
NeFLAG runs at its defaults (probability score, ε = 5% RMS of the range, T = 10) and with the
logit score. IG: 32 Gauss–Legendre steps from a black baseline; SmoothGrad: 32 samples,
noise level 0.15. "NeFLAG-20 (logit) ⊙ x" is shown for reference only (IG's map carries the
factor x, the others do not): it enters no verdict.

NeFLAG-10 is left out to keep the run under ~10 minutes on one CPU thread.

    python benchmarks/claims_neflag.py [--n 20] [--out docs/claims/neflag.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

import faithmap as fm
from faithmap.core.files import atomic_write_bytes
from faithmap.evaluation import load_eval_data

PAPER = "NeFLAG (Li et al., IJCAI 2023)"
BENCHMARKS = (("mnist", "mnist_vgg"), ("grid", "mnist_resnet"), ("cluttered", "mnist_resnet"))
SCORES = ("probability", "logit")


def methods(model) -> dict[str, fm.Explainer]:
    out: dict[str, fm.Explainer] = {
        "integrated_gradients": fm.IntegratedGradients(model, n_steps=32),
        "smoothgrad": fm.SmoothGrad(model, n_samples=32, seed=0),
    }
    for score in SCORES:
        for n in (1, 20):
            out[f"neflag{n}_{score}"] = fm.NeFLAG(model, n_samples=n, score=score, seed=0,
                                                  batch_size=64)
    return out


def run(n: int) -> dict[str, dict[str, tuple[float, float, float]]]:
    """{benchmark: {method: (mean, standard error, seconds)}}."""
    metric = fm.metrics.get_metric("insertion_deletion")
    table: dict[str, dict[str, tuple[float, float, float]]] = {}
    for data, model_name in BENCHMARKS:
        model = fm.zoo.load(model_name)
        d = load_eval_data(data, n=n, seed=0, channels=1)
        x, y = d.images[:n], d.target[:n]
        table[data] = {}
        for name, explainer in methods(model).items():
            start = time.perf_counter()
            attr = explainer(x, y)
            seconds = time.perf_counter() - start
            maps = {name: attr}
            if name == "neflag20_logit":
                maps["neflag20_logit_times_x"] = attr * x
            for key, a in maps.items():
                s = metric(model, x, a, y)
                table[data][key] = (float(s.mean()), float(s.std() / len(s) ** 0.5), seconds)
            print(f"{data:10s} {name:24s} {table[data][name][0]:.4f} "
                  f"± {table[data][name][1]:.4f}  {seconds:.1f}s", flush=True)
    return table


def verdict(hits: int, total: int) -> str:
    return "yes" if hits == total else ("no" if hits == 0 else "partly")


def claims(table) -> list[dict]:
    pairs = [(d, s) for d in table for s in SCORES]
    mono = [(d, s) for d, s in pairs
            if table[d][f"neflag20_{s}"][0] >= table[d][f"neflag1_{s}"][0]]
    beats = [(d, s) for d, s in pairs
             if all(table[d][f"neflag20_{s}"][0] > table[d][b][0]
                    for b in ("integrated_gradients", "smoothgrad"))]

    def show(d: str, s: str, keys: tuple[str, ...]) -> str:
        return f"{d}/{s}: " + ", ".join(f"{k.split('_')[0]} {table[d][k][0]:.3f}" for k in keys)

    return [
        {"paper": PAPER, "claim": "NeFLAG-20 ≥ NeFLAG-1 on the insertion − deletion AUC",
         "measured": f"holds for {len(mono)}/{len(pairs)} (benchmark, score) pairs; " + "; ".join(
             show(d, s, (f"neflag20_{s}", f"neflag1_{s}")) for d, s in pairs),
         "verdict": verdict(len(mono), len(pairs))},
        {"paper": PAPER,
         "claim": "NeFLAG beats Integrated Gradients and SmoothGrad on the insertion − deletion "
                  "AUC",
         "measured": f"NeFLAG-20 beats both in {len(beats)}/{len(pairs)} (benchmark, score) "
                     "pairs; " + "; ".join(
                         show(d, s, (f"neflag20_{s}", "integrated_gradients", "smoothgrad"))
                         for d, s in pairs),
         "verdict": verdict(len(beats), len(pairs))},
    ]


def markdown(table, n: int) -> str:
    names = list(next(iter(table.values())))
    lines = [f"insertion − deletion AUC (↑), mean ± standard error over n = {n} samples "
             "(seconds: one call, CPU, measured under contention)", "",
             "| method | " + " | ".join(table) + " |", "|---" * (len(table) + 1) + "|"]
    for m in names:
        cells = [f"{table[d][m][0]:.3f} ± {table[d][m][1]:.3f} ({table[d][m][2]:.0f} s)"
                 for d in table]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--out", default="docs/claims/neflag.json")
    args = parser.parse_args()
    torch.manual_seed(0)
    table = run(args.n)
    doc = {"command": f"python benchmarks/claims_neflag.py --n {args.n}",
           "claims": claims(table), "tables": markdown(table, args.n)}
    atomic_write_bytes(Path(args.out), (json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
                       .encode())
    print(doc["tables"])
    for c in doc["claims"]:
        print(f"- {c['claim']}: {c['verdict']} ({c['measured']})")


if __name__ == "__main__":
    main()
