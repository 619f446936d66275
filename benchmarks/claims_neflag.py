"""NeFLAG's paper claims (issues 8, 15, 16) on our benchmarks: insertion − deletion AUC.

Li et al. (IJCAI 2023) report, on ImageNet, that NeFLAG-20 ≥ NeFLAG-10 ≥ NeFLAG-1 and that
NeFLAG beats Integrated Gradients and SmoothGrad on the area under the insertion curve minus
the area under the deletion curve. We check both with ``fm.metrics.insertion_deletion``
(insertion into a blurred image minus deletion to zeros, target probability) on three of
our benchmarks, ``--n`` samples per seed:
- ``mnist``: MNIST test digits (28²) with the zoo's ``mnist_vgg``;
- ``grid``, ``cluttered``: 56² benchmarks with ``mnist_resnet`` (``mnist_vgg`` takes 28² only).
Targets are the model's **predicted** classes (the faithfulness of what the model decides);
the fraction of samples whose benchmark label is the prediction is reported per benchmark.
A seed s draws the samples (``load_eval_data(..., seed=s)``) and seeds SmoothGrad and NeFLAG.
Verdicts come from ``faithmap.evaluation.verdicts``: a comparison holds only when its 95%
interval over (seed, sample) pairs excludes 0 and every seed agrees.

NeFLAG runs at its defaults (stratified sampling, θ = 60°, probability score, ε = 5% RMS of
the range, T = 10) and with the logit score, for n ∈ {1, 10, 20}. IG: 32 Gauss–Legendre steps
from a black baseline; SmoothGrad: 32 samples, noise level 0.15. Reference rows that enter no
verdict: "NeFLAG-20 (logit) ⊙ x" (IG's map carries the factor x, the others do not) and
"NeFLAG-20, descent" (the wave-1 estimator whose 20 points are one point; probability score).

At the ``make claims`` setting (``--n 20 --seeds 3``) it took 7 min 44 s of CPU time on one
thread (``time``: user; 29 min wall on a machine shared with other jobs).

    python benchmarks/claims_neflag.py [--n 20] [--seeds 3] [--out docs/claims/neflag.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

import faithmap as fm
from faithmap.core.files import atomic_write_bytes
from faithmap.evaluation import load_eval_data
from faithmap.evaluation.verdicts import claim_verdict, compare, summarise

PAPER = "NeFLAG (Li et al., IJCAI 2023)"
SOURCE = ("Li et al. 2023, insertion − deletion figure (ImageNet, VGG-16 / ResNet-101; values "
          "read from the figure, /work/shared/specs/neflag.md)")
BENCHMARKS = (("mnist", "mnist_vgg"), ("grid", "mnist_resnet"), ("cluttered", "mnist_resnet"))
SCORES = ("probability", "logit")
SIZES = (1, 10, 20)
REFERENCE = ("neflag20_logit_times_x", "neflag20_descent")


def methods(model, seed: int) -> dict[str, fm.Explainer]:
    out: dict[str, fm.Explainer] = {
        "integrated_gradients": fm.IntegratedGradients(model, n_steps=32),
        "smoothgrad": fm.SmoothGrad(model, n_samples=32, seed=seed),
    }
    for score in SCORES:
        for n in SIZES:
            out[f"neflag{n}_{score}"] = fm.NeFLAG(model, n_samples=n, score=score, seed=seed,
                                                  batch_size=64)
    out["neflag20_descent"] = fm.NeFLAG(model, n_samples=20, sampling="descent", seed=seed,
                                        batch_size=64)
    return out


def run(n: int, seeds: int):
    """scores {benchmark: {method: (seeds × n) array}}, seconds {benchmark: {method: s}},
    predicted fraction {benchmark: float}."""
    metric = fm.metrics.get_metric("insertion_deletion")
    scores: dict[str, dict[str, np.ndarray]] = {}
    seconds: dict[str, dict[str, float]] = {}
    fraction: dict[str, float] = {}
    for data, model_name in BENCHMARKS:
        model = fm.zoo.load(model_name)
        rows: dict[str, list[np.ndarray]] = {}
        times: dict[str, list[float]] = {}
        agree = []
        for seed in range(seeds):
            d = load_eval_data(data, n=n, seed=seed, channels=1)
            x = d.images[:n]
            with torch.no_grad():
                predicted = model(x).argmax(1)
            agree.append((predicted == d.target[:n]).double().mean().item())
            for name, explainer in methods(model, seed).items():
                start = time.perf_counter()
                attr = explainer(x, predicted)
                times.setdefault(name, []).append(time.perf_counter() - start)
                maps = {name: attr}
                if name == "neflag20_logit":
                    maps["neflag20_logit_times_x"] = attr * x
                for key, a in maps.items():
                    rows.setdefault(key, []).append(metric(model, x, a, predicted).numpy())
            print(f"{data} seed {seed}: " + ", ".join(
                f"{k} {rows[k][-1].mean():.3f}" for k in rows), flush=True)
        scores[data] = {k: np.stack(v) for k, v in rows.items()}
        seconds[data] = {k: float(np.mean(v)) for k, v in times.items()}
        seconds[data]["neflag20_logit_times_x"] = seconds[data]["neflag20_logit"]
        fraction[data] = float(np.mean(agree))
    return scores, seconds, fraction


def claims(scores) -> list[dict]:
    mono, beats = [], []
    for d in scores:
        for s in SCORES:
            t = scores[d]
            mono.append((f"{d}/{s}", compare(t[f"neflag20_{s}"], t[f"neflag1_{s}"])))
            for b, label in (("integrated_gradients", "IG"), ("smoothgrad", "SG")):
                beats.append((f"{d}/{s}", compare(t[f"neflag20_{s}"], t[b]), label))
    return [
        {"paper": PAPER, "claim": "NeFLAG-20 ≥ NeFLAG-1 on the insertion − deletion AUC",
         "measured": "; ".join(f"{k}: {c.text('NeFLAG-20', 'NeFLAG-1')}" for k, c in mono),
         "verdict": claim_verdict(c.outcome for _, c in mono), "source": SOURCE},
        {"paper": PAPER,
         "claim": "NeFLAG beats Integrated Gradients and SmoothGrad on the insertion − deletion "
                  "AUC",
         "measured": "; ".join(f"{k}: {c.text('NeFLAG-20', lb)}" for k, c, lb in beats),
         "verdict": claim_verdict(c.outcome for _, c, _ in beats), "source": SOURCE},
    ]


def markdown(scores, seconds, fraction, n: int, seeds: int) -> str:
    names = list(next(iter(scores.values())))
    lines = [f"insertion − deletion AUC (↑) on the predicted class, mean ± 95% half-width over "
             f"{seeds} seeds × n = {n} samples (seconds: one call on n samples, CPU, mean over "
             "seeds); reference rows (no verdict): " + ", ".join(REFERENCE), "",
             "| method | " + " | ".join(scores) + " |", "|---" * (len(scores) + 1) + "|"]
    for m in names:
        cells = []
        for d in scores:
            mean, half = summarise(scores[d][m])
            cells.append(f"{mean:.3f} ± {half:.3f} ({seconds[d][m]:.1f} s)")
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    lines += ["", "label = prediction: " + ", ".join(f"{d} {f:.3f}" for d, f in fraction.items())]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", default="docs/claims/neflag.json")
    args = parser.parse_args()
    torch.manual_seed(0)
    scores, seconds, fraction = run(args.n, args.seeds)
    doc = {"command": f"python benchmarks/claims_neflag.py --n {args.n} --seeds {args.seeds}",
           "claims": claims(scores),
           "tables": markdown(scores, seconds, fraction, args.n, args.seeds),
           "seeds": args.seeds, "n": args.n, "target_policy": "predicted",
           "predicted_fraction": fraction}
    atomic_write_bytes(Path(args.out), (json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
                       .encode())
    print(doc["tables"])
    for c in doc["claims"]:
        print(f"- {c['claim']}: {c['verdict']} ({c['measured']})")


if __name__ == "__main__":
    main()
