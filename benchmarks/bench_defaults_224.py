"""Cost of one 224² photo per method and options (issue 20): passes and CPU seconds.

torchvision resnet50 (random weights), the ``chelsea`` sample photo at 224², one thread;
first the CPU seconds of one forward+backward row (batch 8) through the whole model and
up to ``layer4`` (DANCE's solver rows), then per case ``Explainer.cost`` (passes) and the
CPU seconds (``time.process_time``, so a busy machine inflates them less than wall time).

    OMP_NUM_THREADS=1 python benchmarks/bench_defaults_224.py METHOD JSON [METHOD JSON ...]
    e.g. ... neflag '{}' dance '{"patch": 32, "max_masks": 12, "steps": 5}'
"""

from __future__ import annotations

import json
import sys
import time

import torch
import torchvision

import faithmap as fm
from faithmap.data.samples import sample_images
from faithmap.methods.dance.decoys import layer_output


def main() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = torchvision.models.resnet50(weights=None).eval()
    x = sample_images(224)["chelsea"][None]

    def per_row(fn, rows: int = 8, reps: int = 2) -> float:
        xb = x.repeat(rows, 1, 1, 1)
        fn(xb)
        t = time.process_time()
        for _ in range(reps):
            fn(xb)
        return (time.process_time() - t) / (reps * rows)

    def full(xb):
        xi = xb.clone().requires_grad_(True)
        torch.autograd.grad(model(xi)[:, 0].sum(), xi)

    def to_layer4(xb):
        xi = xb.clone().requires_grad_(True)
        torch.autograd.grad(layer_output(model, model.layer4, xi).sum(), xi)

    print(f"fwd+bwd per row (batch 8): {per_row(full):.3f} CPU-s; "
          f"to layer4: {per_row(to_layer4):.3f} CPU-s", flush=True)
    args = sys.argv[1:]
    for method, options in zip(args[0::2], args[1::2]):
        opts = json.loads(options)
        explainer = fm.get_explainer(model, method, **opts)
        cost = explainer.cost(tuple(x.shape))
        t = time.process_time()
        explainer(x)
        print(f"{method} {opts}: {time.process_time() - t:.1f} CPU-s (1 thread); {cost}",
              flush=True)


if __name__ == "__main__":
    main()
