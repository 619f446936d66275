"""COMET cost (issue 9): training time per epoch and inference cost vs a plain classifier.

Side by side on the same cluttered-MNIST batches (56×56, CPU), alternating repeats:

1. One training epoch of COMET (selector + predictor updated, frozen detector's forward and
   input-backward) vs one epoch of the plain classifier it uses as predictor/black box.
2. Inference: COMET's forward (selector + predictor, and the mask for free) vs the plain
   classifier's forward on the same batch, and vs the mask alone (``explain``).

Absolute times depend on the machine's load; the ratios are the figures to read.

    python benchmarks/bench_comet.py [--n 512] [--repeats 3] [--batch-size 64]
"""

from __future__ import annotations

import argparse
import statistics

import torch

from faithmap import comet
from faithmap.evaluation.throughput import timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=512, help="training images per epoch")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", "--batch", dest="batch_size", type=int, default=64,
                        help="rows per forward pass (training minibatch); --batch is the old name")
    args = parser.parse_args()
    train_d, val_d = comet.splits(n_train=args.n, n_val=64)
    quiet = {"progress": False}
    det, _ = comet.train_classifier(train_d, val_d, epochs=1, **quiet)

    def comet_epoch():
        comet.train(train_d, val_d, detector=det, epochs=1, tau=0.1, warmup_epochs=1,
                    batch_size=args.batch_size, log=lambda s: None, **quiet)

    def plain_epoch():
        comet.train_classifier(train_d, val_d, epochs=1, batch_size=args.batch_size, **quiet)

    t_comet, t_plain = [], []
    comet_epoch(), plain_epoch()  # warm-up
    for _ in range(args.repeats):
        t_comet.append(timed(comet_epoch))
        t_plain.append(timed(plain_epoch))
    c, p = statistics.median(t_comet), statistics.median(t_plain)
    print(f"## Training ({args.n} images of 56×56, batch {args.batch_size}, one epoch incl. "
          f"validation on 64, {torch.get_num_threads()} thread(s))")
    print("| | COMET epoch (s) | plain classifier epoch (s) | COMET / plain |")
    print("|---|---:|---:|---:|")
    print(f"| default (U-Net 8-16-32 at ½ res, CNN 16-32-64) | {c:.2f} | {p:.2f} | "
          f"{c / p:.2f} |", flush=True)

    model = comet.train(train_d, val_d, detector=det, epochs=1, log=lambda s: None,
                        **quiet).model.eval()
    x = val_d[0][:args.batch_size]
    rows = {"COMET forward (mask + prediction)": lambda: model(x),
            "COMET mask only (explain)": lambda: model.explain(x),
            "plain classifier forward": lambda: det(x)}
    times: dict[str, list[float]] = {k: [] for k in rows}
    with torch.no_grad():
        for fn in rows.values():
            fn()
        for _ in range(args.repeats * 5):
            for k, fn in rows.items():
                times[k].append(timed(fn))
    base = statistics.median(times["plain classifier forward"])
    print(f"\n## Inference (batch {len(x)}, no grad)")
    print("| | time (ms) | / plain forward |")
    print("|---|---:|---:|")
    for k, v in times.items():
        print(f"| {k} | {1e3 * statistics.median(v):.1f} | {statistics.median(v) / base:.2f} |")
    params = {"selector": sum(p.numel() for p in model.selector.parameters()),
              "predictor": sum(p.numel() for p in model.predictor.parameters())}
    print(f"\nparameters: {params}")


if __name__ == "__main__":
    main()
