"""Resident memory of one explainer call under an address-space cap (issue 20).

Runs ``fm.explain(resnet50, photo, method, **options)`` on one 224² sample photo
(torchvision resnet50, random weights) with ``RLIMIT_AS`` set to ``--cap`` GiB before torch
is imported, so a blow-up ends in a MemoryError instead of the kernel's OOM killer, and
prints VmSize / VmRSS (KiB) every ``--every`` seconds, then the peak RSS. ``--seconds``
stops the call after that long (the DANCE defaults at 224² run for hours).

    OMP_NUM_THREADS=1 python benchmarks/bench_memory.py dance [--options '{}'] [--cap 8]
        [--seconds 400]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import threading
import time


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("method")
    p.add_argument("--options", default="{}", help="JSON options of the method")
    p.add_argument("--cap", type=float, default=8.0, help="address-space cap, GiB")
    p.add_argument("--seconds", type=float, default=400.0)
    p.add_argument("--every", type=float, default=5.0)
    a = p.parse_args()
    cap = int(a.cap * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    import torch
    import torchvision

    import faithmap as fm
    from faithmap.data.samples import sample_images

    torch.manual_seed(0)
    model = torchvision.models.resnet50(weights=None).eval()
    x = sample_images(224)["chelsea"][None]
    t0 = time.time()

    def monitor() -> None:
        while True:
            with open("/proc/self/status") as f:
                status = {ln.split(":")[0]: ln.split()[1] for ln in f
                          if ln.startswith(("VmRSS", "VmSize"))}
            print(f"{time.time() - t0:7.1f} s  VmSize {status['VmSize']}  "
                  f"VmRSS {status['VmRSS']}", flush=True)
            time.sleep(a.every)

    def stop() -> None:
        time.sleep(a.seconds)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(f"stopped after {a.seconds:g} s; peak RSS {peak / 2**20:.2f} GiB", flush=True)
        os._exit(0)

    threading.Thread(target=monitor, daemon=True).start()
    threading.Thread(target=stop, daemon=True).start()
    try:
        fm.explain(model, x, method=a.method, **json.loads(a.options))
        status = "done"
    except (MemoryError, RuntimeError) as exc:
        status = f"{type(exc).__name__}: {str(exc)[:200]}"
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"{status} after {time.time() - t0:.1f} s; peak RSS {peak / 2**20:.2f} GiB")


if __name__ == "__main__":
    main()
