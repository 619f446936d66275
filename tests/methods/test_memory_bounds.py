"""Memory bounded by ``batch_size`` (DESIGN.md §3, issue 20): every method under an
address-space cap.

Each case runs in a fresh subprocess whose address space is capped with
``resource.setrlimit(RLIMIT_AS, 6 GiB)`` before torch is imported (torch + torchvision +
faithmap reserve about 3.5 GiB of virtual memory at import, measured with /proc/self/status;
the cap leaves the rest for the work). A method that materialises something proportional to
masks × signs, samples × draws or steps × samples × features fails with a MemoryError
there instead of swapping the shared machine. The subprocess also reports its peak RSS
(``getrusage(RUSAGE_SELF).ru_maxrss``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("torchvision")

GIB = 2**30
CAP = 6 * GIB

_PRELUDE = textwrap.dedent("""
    import json, resource, sys
    cap = int(sys.argv[1])
    if cap > 0:
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    import torch
    torch.set_num_threads(1)
    import faithmap as fm
    args = json.loads(sys.argv[2])
    def address_space():
        for line in open("/proc/self/status"):
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    if cap < 0:  # a budget of -cap bytes on top of what the imports reserved
        resource.setrlimit(resource.RLIMIT_AS, (address_space() - cap,) * 2)
    def done(**facts):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print("RESULT " + json.dumps({"peak_rss_mib": peak, **facts}))
""")

_RESNET50 = _PRELUDE + textwrap.dedent("""
    import torchvision
    from faithmap.data.samples import sample_images
    torch.manual_seed(0)
    model = torchvision.models.resnet50(weights=None).eval()
    x = sample_images(224)["chelsea"][None]
    attr = fm.explain(model, x, method=args["method"], batch_size=args["batch_size"],
                      **args["options"])
    done(shape=list(attr.shape), finite=bool(torch.isfinite(attr).all()))
""")

# A cheap smooth model on large inputs: its per-pass cost is tiny, so a method's own
# storage (kept gradients, directions) dominates the memory.
_SMOOTH = _PRELUDE + textwrap.dedent("""
    from torch import nn
    class Smooth(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.linspace(-1, 1, 10)[:, None])
        def forward(self, x):
            m = x.flatten(1).mean(1, keepdim=True)
            return torch.sin(6 * m @ self.w.T) + m ** 2
    from faithmap.data.samples import sample_images
    photos = list(sample_images(args["size"]).values())
    x = torch.stack([photos[i % len(photos)] for i in range(args["n"])])
    attr = fm.explain(Smooth(), x, method=args["method"], target=0,
                      batch_size=args["batch_size"], **args["options"])
    done(shape=list(attr.shape), finite=bool(torch.isfinite(attr).all()))
""")


def run_capped(script: str, args: dict, cap: int = CAP, timeout: float = 600) -> dict:
    """Run ``script`` in a subprocess under an address-space cap (``cap`` bytes, set before
    the imports; a negative ``cap``: −cap bytes on top of what the imports reserved); its
    RESULT facts."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-c", script, str(cap), json.dumps(args)],
                          capture_output=True, text=True, timeout=timeout, env=env)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, (
        f"{args} failed under an address-space cap of {cap / GIB:g} GiB "
        "(negative: that much on top of the imports) "
        f"(rc={proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def test_the_cap_is_enforced():
    """The cap can fail: 8 GiB of floats do not fit under it."""
    script = _PRELUDE + "torch.empty(2 * 2**30)\ndone()\n"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", script, str(CAP), "{}"],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode != 0 and "allocate" in proc.stderr.lower(), proc.stderr[-2000:]


#: Working memory allowed on top of the imports in the many-samples cases (D = 3·256²).
BUDGET = 300 * 2**20


@pytest.mark.parametrize("method,options", [
    # before: all 16 × 32 kept gradients (0.4 GB) at once; now batch_size samples' at a time
    ("integrated_gradients", {"n_steps": "auto", "tolerance": 1e-12, "max_steps": 32}),
    # before: the N × n × D directions and the Gram–Schmidt basis (≈ 0.6 GB) at once
    ("neflag", {"n_samples": 20, "steps": 1}),
])
def test_memory_does_not_grow_with_the_number_of_samples(method, options):
    pytest.importorskip("skimage")
    facts = run_capped(_SMOOTH, {"method": method, "options": options, "n": 16, "size": 256,
                                 "batch_size": 2}, cap=-BUDGET)
    assert facts["shape"] == [16, 3, 256, 256] and facts["finite"]


CHEAP = {
    "saliency": {}, "input_x_gradient": {}, "gradcam": {}, "srd": {},
    "integrated_gradients": {"n_steps": 4},
    "smoothgrad": {"n_samples": 4}, "vargrad": {"n_samples": 4},
    "neflag": {"n_samples": 3, "steps": 1},
    "dance": {"max_masks": 2, "steps": 2},
    "bsm": {"search_options": {"fmn_steps": 4}, "refine_steps": 2},
    "big": {"search_options": {"fmn_steps": 4}, "refine_steps": 2, "n_steps": 4},
    "boundary_smoothgrad": {"search_options": {"fmn_steps": 4}, "refine_steps": 2,
                            "n_samples": 4},
}
#: Methods that cannot run on an arbitrary torchvision model (a checkpoint per detector).
NOT_ON_RESNET50 = {"comet"}


def test_every_registered_method_has_a_case():
    import faithmap as fm

    assert set(fm.available_methods()) == set(CHEAP) | NOT_ON_RESNET50


def _resnet50_case(method: str, batch_size: int = 2) -> None:
    facts = run_capped(_RESNET50, {"method": method, "options": CHEAP[method],
                                   "batch_size": batch_size})
    assert facts["shape"][0] == 1 and facts["shape"][-2:] in ([224, 224], [7, 7])
    assert facts["finite"] or method in ("bsm", "big", "boundary_smoothgrad"), facts


def test_neflag_on_resnet50_224():
    """The representative case of the default run (the others are slow)."""
    pytest.importorskip("skimage")
    _resnet50_case("neflag")


@pytest.mark.slow
@pytest.mark.parametrize("method", sorted(set(CHEAP) - {"neflag"}))
def test_every_method_on_resnet50_224(method):
    pytest.importorskip("skimage")
    _resnet50_case(method)
