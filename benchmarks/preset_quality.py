"""How close a cheap preset's map is to a costlier run of the same method, on one photo.

For DANCE and NeFLAG (the two methods whose defaults are impractical or slow on a 224²
photo): torchvision resnet50 (random weights — no pretrained weights can be downloaded
here, so this measures agreement between settings, not faithfulness), scikit-image's
chelsea shipped inside faithmap at 224², the predicted class. Each method runs at its
``fast`` preset and at a reference with 4× the budget along the preset's own axes (DANCE:
4× the masks and 4× the solver steps; NeFLAG: the ``paper`` preset, 2× the samples × 2× the
steps). Printed: declared passes, seconds, and the Spearman rank correlation between the
two maps (1 = the same ranking of pixels); the figure (``fm.viz.compare``) is written to
``docs/img/preset_quality.png``.

    OMP_NUM_THREADS=1 python benchmarks/preset_quality.py [--out docs/img/preset_quality.png]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torchvision

import faithmap as fm
from faithmap.core.presets import preset_options

REFERENCES = {
    "dance": lambda fast: {**fast, "max_masks": 4 * fast["max_masks"], "steps": 4 * fast["steps"]},
    "neflag": lambda fast: preset_options("neflag", "paper", {}),
}


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    """Rank correlation of two maps (ties broken by position; literal, numpy only)."""
    ra = np.argsort(np.argsort(a.flatten().numpy(), kind="stable"), kind="stable")
    rb = np.argsort(np.argsort(b.flatten().numpy(), kind="stable"), kind="stable")
    return float(np.corrcoef(ra, rb)[0, 1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/img/preset_quality.png")
    args = parser.parse_args()
    torch.manual_seed(0)
    model = torchvision.models.resnet50(num_classes=1000).eval()
    x = fm.data.sample_images(224)["chelsea"][None]
    maps, rows = {}, []
    for method, reference in REFERENCES.items():
        fast = preset_options(method, "fast", {})
        for label, options in (("fast", fast), ("reference", reference(fast))):
            explainer = fm.get_explainer(model, method, **options)
            cost = explainer.cost(tuple(x.shape))
            start = time.perf_counter()
            attr = explainer(x).detach()
            seconds = time.perf_counter() - start
            maps[f"{method} {label}"] = attr
            passes = cost.passes + sum(cost.other.values())
            rows.append((method, label, options, passes, seconds))
        rho = spearman(maps[f"{method} fast"].sum(1), maps[f"{method} reference"].sum(1))
        print(f"{method}: Spearman(fast, reference) = {rho:.3f}")
    print("| method | setting | options | declared passes | seconds |")
    print("|---|---|---|---:|---:|")
    for method, label, options, passes, seconds in rows:
        print(f"| {method} | {label} | `{options}` | {passes:,} | {seconds:.1f} |")
    figure = fm.viz.compare(x, {k: v for k, v in maps.items()}, sign="absolute")
    figure.savefig(args.out, dpi=72)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
