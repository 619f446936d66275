"""What a newcomer waits for (issue 20), measured side by side in one run:

1. ``faithmap demo`` (its defaults, ``faithmap.evaluation.demo``): wall seconds, CPU seconds
   of the process (user + system), and the per-stage seconds of its ``results.json``
   (``stage_timings``: explain, each metric, curves, figures; ``timings`` per method).
2. Seconds per 224² image of every registered method that applies to torchvision resnet50
   (random weights, seed 0) on one bundled photo (scikit-image's chelsea, shipped inside
   faithmap), at each preset of ``faithmap.core.presets`` (``fast``, ``default``, ``paper``;
   only the defaults where an older tree has no presets), beside the passes the explainer
   declares (``Explainer.cost``). One worker process per preset runs the methods in turn,
   the boundary cache cleared before each (each method pays its own search), under an
   address-space limit (``--memory-gib``); a run whose declared passes × the measured
   seconds per pass exceed ``--timeout`` is not started, one that runs past it is stopped
   (SIGALRM) and reported as such; runs that would not fit in what is left of ``--budget``
   (seconds for the whole benchmark) are not started (fast first, then default, paper).

Seconds depend on the machine's load (printed with the results); the declared passes do not.

    OMP_NUM_THREADS=1 python benchmarks/bench_cli.py [--threads 1] [--timeout 120]
        [--presets fast,default,paper] [--methods saliency,dance] [--skip-demo]
        [--budget 840] [--json out.json]
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

PHOTO = "chelsea"


def _load() -> str:
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def _cpu_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_demo(faithmap: str, extra: list[str]) -> dict:
    """``faithmap demo`` in a fresh process: wall and CPU seconds, its stage timings."""
    with tempfile.TemporaryDirectory(prefix="bench-demo-") as out:
        cpu, load, tic = _cpu_children(), _load(), time.perf_counter()
        proc = subprocess.run([faithmap, "demo", "--out", out, *extra],
                              capture_output=True, text=True)
        wall = time.perf_counter() - tic
        row = {"command": " ".join(["faithmap", "demo", *extra]), "returncode": proc.returncode,
               "wall_s": round(wall, 1), "cpu_s": round(_cpu_children() - cpu, 1),
               "load_before": load, "load_after": _load()}
        if proc.returncode != 0:
            row["error"] = (proc.stdout + proc.stderr)[-2000:]
            return row
        results = json.loads((Path(out) / "results.json").read_text())
        row["n"] = results["config"]["n"]
        row["methods"] = results["config"]["methods"]
        row["stage_timings"] = results.get("stage_timings", {})
        per_method: dict[str, float] = {}
        for timings in results.get("timings", {}).values():
            for method, t in timings.items():
                per_method[method] = per_method.get(method, 0.0) + t.get("explain_s", 0.0)
        row["explain_s_per_method"] = {m: round(s, 2) for m, s in per_method.items()}
        return row


def _presets() -> list[str] | None:
    """The preset names of this tree, or None when it has none."""
    for module in ("faithmap.core.presets", "faithmap.methods.presets"):
        try:
            return list(__import__(module, fromlist=["PRESET_NAMES"]).PRESET_NAMES)
        except (ImportError, AttributeError):
            continue
    return None


class _Stopped(Exception):
    pass


def _alarm(signum, frame):  # noqa: ARG001 - signal handler signature
    raise _Stopped


def worker(preset: str | None, methods: list[str] | None, timeout: float, threads: int,
           deadline: float) -> None:
    """One process, one preset: every method on one 224² photo; a JSON line per method."""
    import torch
    import torchvision

    import faithmap as fm
    from faithmap.core.registry import METHODS
    from faithmap.methods.boundary.cache import DEFAULT_CACHE

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = torchvision.models.resnet50().eval()
    x = fm.data.sample_images(size=224)[PHOTO][None]
    fm.explain(model, x, "saliency")  # warm-up
    tic = time.perf_counter()
    fm.explain(model, x, "saliency")
    per_pass = (time.perf_counter() - tic) / 2  # one forward + one backward row
    takes_preset = "preset" in inspect.signature(fm.get_explainer).parameters
    names = methods or fm.available_methods()
    signal.signal(signal.SIGALRM, _alarm)
    for name in names:
        applies = getattr(METHODS.get(name), "applies_to", None)
        row: dict = {"method": name, "preset": preset or "default", "threads": threads,
                     "seconds_per_pass": round(per_pass, 3)}
        if applies is not None and not applies(model):
            print(json.dumps({**row, "note": "does not apply to resnet50"}), flush=True)
            continue
        try:
            options = {"preset": preset} if (takes_preset and preset) else {}
            explainer = fm.get_explainer(model, name, **options)
            cost = explainer.cost(tuple(x.shape))
        except Exception as exc:  # noqa: BLE001 - reported in the table
            print(json.dumps({**row, "note": f"{type(exc).__name__}: {exc}"[:200]}), flush=True)
            continue
        passes = None if cost is None else cost.passes + sum(cost.other.values())
        row["declared_passes"] = passes
        limit = min(timeout, deadline - time.time())
        if limit <= 1 or (passes is not None and passes * per_pass > limit):
            why = f"> {timeout:.0f} s" if limit == timeout else "> the run's time left"
            est = "" if passes is None else f"≈ {passes * per_pass:.0f} s estimated "
            row["note"] = f"not run: {est}{why}"
            print(json.dumps(row), flush=True)
            continue
        DEFAULT_CACHE.clear()
        cpu, tic = time.process_time(), time.perf_counter()
        signal.setitimer(signal.ITIMER_REAL, limit)
        try:
            attr = explainer(x)
            row["finite"] = bool(torch.isfinite(attr).all())
        except _Stopped:
            row["note"] = f"stopped after {limit:.0f} s"
        except MemoryError:
            row["note"] = "out of memory (address-space limit)"
        except RuntimeError as exc:
            row["note"] = f"RuntimeError: {exc}"[:200]
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        row["seconds"] = round(time.perf_counter() - tic, 1)
        row["cpu_s"] = round(time.process_time() - cpu, 1)
        print(json.dumps(row), flush=True)


def run_methods(presets: list[str | None], methods: list[str] | None, timeout: float,
                threads: int, memory_gib: float, deadline: float) -> list[dict]:
    rows: list[dict] = []
    limit = int(memory_gib * 2**30)

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    for preset in presets:
        cmd = [sys.executable, __file__, "--worker", preset or "", "--timeout", str(timeout),
               "--threads", str(threads), "--deadline", str(deadline)]
        if methods:
            cmd += ["--methods", ",".join(methods)]
        load = _load()
        proc = subprocess.run(cmd, capture_output=True, text=True, preexec_fn=cap)
        got = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
        for row in got:
            row["load"] = load
        rows += got
        if proc.returncode != 0:
            rows.append({"method": "(worker)", "preset": preset or "default",
                         "note": f"worker exited {proc.returncode}: {proc.stderr[-300:]}"})
    return rows


def markdown(demo: dict | None, rows: list[dict]) -> str:
    lines = []
    if demo is not None:
        st = demo.get("stage_timings", {})
        lines += [f"`{demo['command']}` (n = {demo.get('n')} per benchmark, "
                  f"{len(demo.get('methods', []))} methods): **{demo['wall_s']} s wall**, "
                  f"{demo['cpu_s']} s CPU (load {demo['load_before']} → {demo['load_after']})", ""]
        if st:
            metric_s = st.get("metric_s", {})
            lines += ["| stage | seconds |", "|---|---|"]
            lines += [f"| explain (all methods) | {st.get('explain_s', 0):.1f} |"]
            lines += [f"| metric {k} | {v:.1f} |" for k, v in metric_s.items()]
            lines += [f"| {k.removesuffix('_s')} | {st[k]:.1f} |"
                      for k in ("curves_s", "figures_s", "blocks_s", "total_s") if k in st]
            lines.append("")
        if demo.get("explain_s_per_method"):
            lines += ["| method | explain seconds (both benchmarks) |", "|---|---|"]
            lines += [f"| {m} | {s} |" for m, s in demo["explain_s_per_method"].items()]
            lines.append("")
    if rows:
        presets = list(dict.fromkeys(r["preset"] for r in rows))
        methods = list(dict.fromkeys(r["method"] for r in rows))
        cell = {(r["method"], r["preset"]): r for r in rows}

        def fmt(r: dict | None) -> str:
            if r is None:
                return "—"
            passes = ("" if r.get("declared_passes") is None
                      else f"{r['declared_passes']} passes")
            if "seconds" in r and "note" not in r:
                return f"{r['seconds']} s (CPU {r['cpu_s']} s; {passes})"
            if "seconds" in r:
                passes = f"{passes}; CPU {r['cpu_s']} s".lstrip("; ")
            return f"{r.get('note', '')} ({passes})" if passes else r.get("note", "")

        lines += ["| method | " + " | ".join(presets) + " |",
                  "|---|" + "---|" * len(presets)]
        lines += [f"| {m} | " + " | ".join(fmt(cell.get((m, p))) for p in presets) + " |"
                  for m in methods]
        per_pass = next((r["seconds_per_pass"] for r in rows if "seconds_per_pass" in r), None)
        lines += ["", f"seconds per pass (one forward + backward row, resnet50 224²): {per_pass}"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="seconds one method may run on one image")
    parser.add_argument("--presets", default=None,
                        help="comma-separated (default: every preset of the tree)")
    parser.add_argument("--methods", default=None, help="comma-separated (default: all)")
    parser.add_argument("--memory-gib", type=float, default=8.0)
    parser.add_argument("--budget", type=float, default=840.0,
                        help="seconds for the whole run: later method runs that would not "
                             "fit are not started")
    parser.add_argument("--deadline", type=float, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--skip-demo", action="store_true")
    parser.add_argument("--skip-methods", action="store_true")
    parser.add_argument("--demo-args", default="", help="extra arguments for faithmap demo")
    parser.add_argument("--json", default=None, help="also write the rows to this file")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    methods = args.methods.split(",") if args.methods else None
    if args.worker is not None:
        worker(args.worker or None, methods, args.timeout, args.threads,
               args.deadline or time.time() + args.budget)
        return
    deadline = time.time() + args.budget
    faithmap = str(Path(sys.executable).with_name("faithmap"))
    demo = None if args.skip_demo else run_demo(faithmap, args.demo_args.split())
    if demo is not None:
        print(json.dumps(demo), flush=True)
    presets: list[str | None] = (args.presets.split(",") if args.presets
                                 else (_presets() or [None]))
    rows = [] if args.skip_methods else run_methods(presets, methods, args.timeout,
                                                    args.threads, args.memory_gib, deadline)
    for row in rows:
        print(json.dumps(row), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"demo": demo, "methods": rows}, indent=1))
    print()
    print(markdown(demo, rows))


if __name__ == "__main__":
    main()
