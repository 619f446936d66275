"""Seconds per 224² photo at each method's ``fast`` preset (issue 20): torchvision resnet50
(random weights, seed 0), scikit-image's astronaut, one explainer call per method in one
process, beside the passes the preset declares (``Explainer.cost``).

    OMP_NUM_THREADS=1 python benchmarks/bench_presets.py --threads 1 [--methods big,dance]

BSM, BIG and boundary SmoothGrad share one boundary search through the cache when run in one
process with the same search settings; ``--methods big`` times one alone.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torchvision

import faithmap as fm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--preset", default="fast", choices=["fast", "default", "paper"])
    parser.add_argument("--methods", default=None, help="comma-separated (default: all but comet)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    methods = (args.methods.split(",") if args.methods else
               [m for m in fm.available_methods() if m != "comet"])
    torch.manual_seed(0)
    model = torchvision.models.resnet50().eval()
    x = fm.data.sample_images(size=224)["astronaut"][None]
    t = time.perf_counter()
    fm.explain(model, x, "saliency")
    one = time.perf_counter() - t  # warm-up; also the cost of 1 forward + 1 backward
    print(json.dumps({"method": "(warm-up saliency)", "seconds": round(one, 2)}), flush=True)
    for method in methods:
        explainer = fm.get_explainer(model, method, preset=args.preset)
        cost = explainer.cost(tuple(x.shape))
        t = time.perf_counter()
        attr = explainer(x)
        seconds = time.perf_counter() - t
        print(json.dumps({"method": method, "preset": args.preset, "threads": args.threads,
                          "seconds": round(seconds, 1),
                          "declared_passes": cost.passes + sum(cost.other.values()),
                          "finite": bool(torch.isfinite(attr).all())}), flush=True)


if __name__ == "__main__":
    main()
