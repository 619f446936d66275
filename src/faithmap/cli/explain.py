"""``faithmap explain IMAGE_OR_DIR...``: an overlay PNG and the raw attribution per image."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from ..core.devices import resolve_device
from ..core.presets import PRESET_NAMES, preset_options
from .common import (
    DEVICES,
    MODEL_HELP,
    build,
    check_out_dir,
    check_target,
    counting_passes,
    fail,
    load,
    note_random_weights,
    one_line,
    parse_options,
    probe,
    shape_text,
)

SUMMARY = "summary.json"


class Input:
    """One file to explain and the output name it gets: its path relative to the folder it
    was found in (so nested folders keep their layout), else its stem."""

    def __init__(self, path: Path, name: Path) -> None:
        self.path, self.name = path, name


def _is_output(f: Path, out: Path, tokens: set[str], recorded: set[Path]) -> bool:
    """``f`` is an earlier output of ``faithmap explain`` in ``out`` (never an input)."""
    try:
        f.resolve().relative_to(out.resolve())
    except ValueError:
        return False
    if f.resolve() in recorded or re.fullmatch(r"summary(-\d+)?\.json", f.name):
        return True
    parts = f.name.split(".")
    return len(parts) >= 3 and parts[-1] in ("png", "npy") and (
        parts[-2] in tokens or re.fullmatch(r"(captum|zennit)-\w+", parts[-2]) is not None)


def collect_files(paths: tuple[str, ...], out: Path | None = None,
                  tokens: set[str] | None = None, recorded: set[Path] | None = None,
                  ) -> tuple[list[Input], list[tuple[str, str]]]:
    """Files to explain (directories expanded, sorted; earlier outputs in ``out`` left out)
    and (path, error) for missing ones."""
    files: list[Input] = []
    missing: list[tuple[str, str]] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            for f in sorted(path.rglob("*")):
                rel = f.relative_to(path)
                if not f.is_file() or any(part.startswith(".") for part in rel.parts):
                    continue
                if out is not None and _is_output(f, out, tokens or set(), recorded or set()):
                    continue
                files.append(Input(f, rel.parent / f.stem))
        elif path.is_file():
            files.append(Input(path, Path(path.stem)))
        else:
            missing.append((p, "no such file or directory"))
    return files, missing


def fresh_paths(out: Path, base: str | Path, suffixes: tuple[str, ...],
                taken: set[Path]) -> list[Path]:
    """Paths ``out/base[-k]<suffix>`` that collide with nothing in ``taken`` (inputs, outputs)."""
    k = 0
    while True:
        name = str(base) if k == 0 else f"{base}-{k}"
        paths = [out / f"{name}{s}" for s in suffixes]
        if not any(p.resolve() in taken for p in paths):
            taken.update(p.resolve() for p in paths)
            return paths
        k += 1


def _previous(out: Path) -> dict[str, Any]:
    """The summary an earlier run left in ``out`` (empty when none or unreadable)."""
    try:
        summary = json.loads((out / SUMMARY).read_text())
        return summary if isinstance(summary, dict) else {}
    except (OSError, ValueError):
        return {}


def declared_cost(explainer, shapes: list[tuple[int, ...]], target) -> tuple[Any, int, int]:
    """What the explainer declares before the run (``Explainer.cost``) for batches of
    ``shapes``: (the Cost per image of the first batch, forward and backward passes of the
    whole run); (None, 0, 0) where it does not declare one."""
    cost = getattr(explainer, "cost", None)
    if cost is None or not shapes:
        return None, 0, 0
    try:
        costs = [cost(shape, target) for shape in shapes]
    except Exception:  # noqa: BLE001 - an estimate only: measured on the first batch instead
        return None, 0, 0
    if any(c is None for c in costs):
        return None, 0, 0
    forward = sum(c.forward * shape[0] for c, shape in zip(costs, shapes))
    backward = sum(c.backward * shape[0] for c, shape in zip(costs, shapes))
    return costs[0], forward, backward


def cost_line(method: str, cost, images: int, forward: int, backward: int) -> str:
    """``METHOD: [at most] F forward + B backward pass(es) per image (exact | an upper bound);
    N image(s) → [at most] T passes (F' forward)``."""
    how = "exact" if cost.exact else "an upper bound"
    if cost.basis:
        how += f", from {cost.basis}"
    bound = "" if cost.exact else "at most "
    return (f"{method}: {cost.text(' per image')} ({how}); {images} image(s) → "
            f"{bound}{forward + backward:,} passes ({forward:,} forward)")


def _prepare(model_spec, weights, method, target, size, batch_size, device, options,
             ray_address, preset=None):
    """Everything ``explain`` checks before compute (each failure one line). Options: the
    ``preset``'s, then ``--batch-size``, then ``--option`` (each overrides the one before)."""
    loaded = load(model_spec, weights)
    try:
        dev = resolve_device(device)
        model = loaded.model.to(dev)
    except Exception as exc:  # noqa: BLE001 - reported to the user as a usage error
        raise fail(f"--device {device}: {one_line(exc)}") from exc
    method_options = parse_options(options)
    if batch_size is not None:
        method_options = {"batch_size": batch_size, **method_options}
    if preset is not None:
        try:
            method_options = preset_options(method, preset, method_options)
        except ValueError as exc:
            raise fail(f"--preset {preset}: {one_line(exc)}") from exc
    explainer = build(model, method, method_options, spec=model_spec)
    size = size or loaded.input_size or 224
    shape = (loaded.channels, size, size)
    classes = probe(model, shape, dev,
                    f"{model_spec} cannot take {shape_text(shape)} images (--size {size})")
    check_target(target, classes)
    if ray_address is not None:
        from ..evaluation.ray_backend import require_ray

        try:
            require_ray()
        except ImportError as exc:
            raise fail(exc) from exc
    return loaded, model, dev, explainer, method_options, size


@click.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("--model", "model_spec", required=True, help=MODEL_HELP)
@click.option("--weights", type=click.Path(exists=True, dir_okay=False),
              help="local weights file (state dict); nothing is downloaded")
@click.option("--method", default="saliency", show_default=True,
              help="registry name (see `faithmap methods`), captum:ClassName or zennit:Composite")
@click.option("--target", type=int, default=None, help="class index (default: predicted class)")
@click.option("--out", "out_dir", default="faithmap-out", show_default=True,
              type=click.Path(file_okay=False))
@click.option("--size", type=click.IntRange(min=1), default=None,
              help="shorter side scaled to SIZE, then a centre-cropped square "
                   "(default: the model's input size, else 224)")
@click.option("--images-per-batch", type=click.IntRange(min=1), default=8, show_default=True,
              help="images per explainer call")
@click.option("--batch-size", type=click.IntRange(min=1), default=None,
              help="rows per forward pass, passed to the method as batch_size "
                   "(default: the method's, 32 for faithmap's methods)")
@click.option("--device", default="auto", show_default=True, type=DEVICES)
@click.option("--preset", type=click.Choice(PRESET_NAMES), default=None,
              help="documented settings of the method (see `faithmap methods --options "
                   "METHOD`): fast (about a minute per 224² image on 2 CPU cores), default "
                   "(the method's defaults), paper (the paper's or authors' code's); "
                   "--batch-size and --option override them")
@click.option("--option", "-o", "options", multiple=True,
              help="method option KEY=VALUE (repeatable), e.g. -o n_steps=32")
@click.option("--resume/--no-resume", default=True, show_default=True,
              help="skip images already explained in OUT by a run with the same model, "
                   "weights, method, options, size and target (e.g. after Ctrl-C)")
@click.option("--ray", "ray_address", is_flag=False, flag_value="local", default=None,
              help="explain the batches on Ray (pip install 'faithmap[ray]'): --ray alone "
                   "starts a local instance, --ray ADDRESS (or auto) joins a cluster")
@click.option("--ray-workers", type=int, default=None,
              help="Ray workers (default: one per GPU, else per CPU of the cluster)")
def explain(inputs, model_spec, weights, method, target, out_dir, size, images_per_batch,
            batch_size, device, preset, options, resume, ray_address, ray_workers) -> None:
    """Explain IMAGE_OR_DIR... : writes an overlay PNG and the raw attribution (.npy) per image.

    Folders are searched recursively; outputs keep their path relative to the folder
    (OUT/sub/name.METHOD.png). Unreadable, non-image or too large files are reported and
    skipped; the exit status is then 1. A re-run with the same configuration skips the
    images already done (--no-resume recomputes them); Ctrl-C stops cleanly (exit 130).
    """
    import torch
    from tqdm import tqdm

    from ..core.batching import chunks
    from ..core.files import atomic_write_bytes, save_npy, save_png
    from ..core.registry import available_methods
    from ..data.images import read_image
    from ..viz import side_by_side

    out = Path(out_dir)
    created = not out.exists()
    check_out_dir(out)  # before any model is built or any image read
    try:
        loaded, model, dev, explainer, method_options, size = _prepare(
            model_spec, weights, method, target, size, batch_size, device, options,
            ray_address, preset)
    except click.ClickException:
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # refused before any compute: leave nothing behind
        raise
    note_random_weights(loaded, model_spec)

    token = method.replace(":", "-")
    config = {"model": model_spec, "weights": None if weights is None else str(Path(weights)
                                                                                .resolve()),
              "method": method, "options": repr(sorted(method_options.items())),
              "size": size, "channels": loaded.channels, "target": target}
    previous = _previous(out)
    recorded = {Path(r[k]).resolve() for r in previous.get("explained", [])
                for k in ("png", "npy") if isinstance(r, dict) and k in r}
    tokens = {m.replace(":", "-") for m in available_methods()} | {token}
    files, failures = collect_files(inputs, out, tokens, recorded)
    taken = {f.path.resolve() for f in files}  # never overwrite an input
    named = [(f, *fresh_paths(out, f"{f.name}.{token}", (".png", ".npy"), taken))
             for f in files]
    (summary_path,) = fresh_paths(out, "summary", (".json",), taken)
    done: dict[str, dict[str, Any]] = {}
    if resume and previous.get("config") == config:
        for r in previous.get("explained", []):
            if Path(r.get("png", "")).is_file() and Path(r.get("npy", "")).is_file():
                done[str(Path(r["image"]).resolve())] = r
    records: list[dict[str, Any]] = []
    todo = []
    for f, png, npy in named:
        r = done.get(str(f.path.resolve()))
        if r is not None and Path(r["png"]).resolve() == png.resolve():
            records.append(r)
        else:
            todo.append((f, png, npy))
    if records:
        click.echo(f"resuming: {len(records)} image(s) already explained in {out}/ are "
                   "skipped (--no-resume recomputes them)", err=True)

    def write_summary(complete: bool) -> None:
        summary = {"model": model_spec, "method": method,
                   "random_weights": loaded.random_weights, "config": config,
                   "complete": complete, "explained": records,
                   "failed": [{"image": p, "error": e} for p, e in failures]}
        atomic_write_bytes(summary_path, json.dumps(summary, indent=2).encode())

    shapes = [(len(rows), loaded.channels, size, size)
              for rows in chunks(len(todo), images_per_batch)]
    cost, total_forward, total_backward = declared_cost(explainer, shapes, target)
    per_sample = None if cost is None else cost.forward
    if todo:  # before the first batch is read or computed
        if cost is not None:
            click.echo(cost_line(method, cost, len(todo), total_forward, total_backward),
                       err=True)
        elif ray_address is None:
            click.echo(f"{method}: passes per image not declared by the method; measured on "
                       "the first batch (the bar counts passes until then)", err=True)
    here = ray_address is None
    by_pass = here and (cost is None or total_forward > 0)  # SRD with a target: by image
    progress = tqdm(total=(total_forward or None) if by_pass else len(todo),
                    desc=method, unit="pass" if by_pass else "img", file=sys.stderr,
                    dynamic_ncols=True, miniters=1)
    images_done = [0]

    def read_batch(batch) -> tuple[list, torch.Tensor | None]:
        kept, images = [], []
        for f, png, npy in batch:
            try:
                images.append(read_image(f.path, size, loaded.channels))
                kept.append((f, png, npy))
            except Exception as exc:  # noqa: BLE001 - any unreadable file is skipped by name
                failures.append((str(f.path), one_line(exc)))
                click.echo(f"skipped {f.path}: {one_line(exc)}", err=True)
        return kept, (torch.stack(images) if images else None)

    def batches() -> Iterator[tuple[list, torch.Tensor]]:
        for rows in chunks(len(todo), images_per_batch):
            group = [todo[i] for i in rows.tolist()]
            kept, x = read_batch(group)
            if x is not None:
                yield kept, x

    def explained_here():
        nonlocal per_sample
        for kept, x in batches():
            try:
                with counting_passes(model, progress.update if by_pass else None) as counts:
                    attr = explainer(x.to(dev), target)
                with torch.no_grad():
                    probs = model(x.to(dev)).softmax(dim=1)
                outcome = (attr.cpu(), probs.cpu(), explainer.metadata.get("target"))
            except Exception as exc:  # noqa: BLE001 - one failing batch must not stop the rest
                outcome = exc
            if per_sample is None and not isinstance(outcome, Exception):
                per_sample = max(1, round(counts["forward"] / len(kept)))
                progress.total = counts["forward"] + per_sample * (len(todo) - len(kept))
                progress.refresh()
                progress.write(f"{method}: {per_sample} forward pass(es) per image (measured); "
                               f"{len(todo)} image(s) → ~{per_sample * len(todo)} passes",
                               file=sys.stderr)
            yield (kept, x), outcome

    if here:
        results = explained_here()
    else:
        from .ray_explain import explain_on_ray

        results = explain_on_ray(
            model, method, method_options, (((b, x), x) for b, x in batches()), target,
            device, None if ray_address == "local" else ray_address, ray_workers)
    try:
        for (kept, x), outcome in results:
            if isinstance(outcome, Exception):
                failures.extend((str(f.path), f"{type(outcome).__name__}: {one_line(outcome)}")
                                for f, _, _ in kept)
                click.echo(f"failed on {len(kept)} image(s): {one_line(outcome)}", err=True)
            else:
                attr, probs, targets = outcome
                targets = targets or [None] * len(kept)
                for i, (f, png, npy) in enumerate(kept):
                    save_npy(npy, attr[i].float())
                    save_png(png, side_by_side(x[i], attr[i], legend=True))
                    predicted = int(probs[i].argmax())
                    records.append({
                        "image": str(f.path), "png": str(png), "npy": str(npy),
                        "target": targets[i], "predicted": predicted,
                        "probability": float(probs[i, predicted]),
                    })
            images_done[0] += len(kept)
            if not by_pass:
                progress.update(len(kept))
            progress.set_postfix_str(f"{images_done[0]}/{len(todo)} img")
            write_summary(complete=False)  # a re-run after a crash resumes from here
    except KeyboardInterrupt:
        progress.close()
        write_summary(complete=False)
        click.echo(f"\ninterrupted: {len(records)} image(s) done, kept in {out}/; run the same "
                   "command again to continue", err=True)
        sys.exit(130)
    if by_pass and cost is not None and not cost.exact:
        progress.total = progress.n  # an upper bound: the run took fewer passes
        progress.refresh()
    progress.close()
    write_summary(complete=not failures)
    click.echo(f"explained {len(records)} image(s) with {method}; outputs in {out}/")
    if failures:
        click.echo(f"{len(failures)} input(s) failed: " + ", ".join(p for p, _ in failures),
                   err=True)
        sys.exit(1)
