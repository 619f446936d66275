"""What the commands share: option parsing, model loading and checks made before any compute
(every hostile case a one-line error naming the option or file, never a traceback)."""

from __future__ import annotations

import ast
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

MODEL_HELP = ("torchvision:ARCH, timm:NAME (pip install 'faithmap[timm]'), zoo:NAME or "
              "module.path:factory (module.path is found in the "
              "current directory too)")
DEVICES = click.Choice(["auto", "cpu", "cuda"])


def one_line(exc: BaseException | str, limit: int = 300) -> str:
    """An error as one short line: its first line, ``limit`` characters at most."""
    text = exc if isinstance(exc, str) else (str(exc.args[0]) if isinstance(exc, KeyError)
                                             and exc.args else str(exc))
    first = (text.strip().splitlines() or [type(exc).__name__])[0].strip()
    return first if len(first) <= limit else first[: limit - 1] + "…"


def fail(message: BaseException | str) -> click.ClickException:
    """A usage error printed as one line (``raise fail(...)``)."""
    return click.ClickException(one_line(message))


def parse_options(pairs: tuple[str, ...], flag: str = "--option") -> dict[str, Any]:
    """``KEY=VALUE`` pairs → {KEY: value}; values are Python literals where they parse."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint=flag)
        try:
            options[key.strip()] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            options[key.strip()] = value
    return options


def scoped_options(pairs: tuple[str, ...], flag: str) -> dict[str, dict[str, Any]]:
    """``NAME.KEY=VALUE`` pairs → {NAME: {KEY: value}}."""
    scoped: dict[str, dict[str, Any]] = {}
    for key, value in parse_options(pairs).items():
        name, sep, option = key.partition(".")
        if not sep or not option:
            raise click.BadParameter(f"expected NAME.KEY=VALUE, got {key!r}", param_hint=flag)
        scoped.setdefault(name, {})[option] = value
    return scoped


def split(text: str | None) -> list[str] | None:
    """A comma-separated list (``None`` when empty)."""
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


@contextmanager
def _current_directory_importable() -> Iterator[None]:
    """``module.path:factory`` resolves against the current directory (as ``python -m``
    does), also from the ``faithmap`` console script, whose sys.path lacks it."""
    cwd = os.getcwd()
    added = cwd not in sys.path and "" not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        yield
    finally:
        if added and cwd in sys.path:
            sys.path.remove(cwd)


def _read_state_dict(weights: str | Path) -> tuple[dict, list[str]]:
    """The state dict in a ``--weights`` file, DataParallel's ``module.`` prefixes stripped;
    with notes on what was done. Raises :func:`fail` for a file that is not one."""
    import torch

    try:
        state = torch.load(Path(weights), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling error means "not a state dict"
        raise fail(f"--weights {weights}: not a PyTorch state dict file "
                   f"({type(exc).__name__}: {one_line(exc, 80)})") from exc
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not state or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise fail(f"--weights {weights}: holds a {type(state).__name__}, not a state dict "
                   "(a mapping of parameter names to tensors)")
    notes = []
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
        notes.append(f"note: --weights {weights}: stripped the 'module.' prefixes of a "
                     "DataParallel state dict")
    return state, notes


def _mismatch(exc: Exception, weights: str | Path, spec: str) -> str:
    """A ``load_state_dict`` error in one line: counts and the first key of each kind."""
    text = str(exc)
    parts = []
    for label, pattern in (("missing", r"Missing key\(s\) in state_dict: (.*)"),
                           ("unexpected", r"Unexpected key\(s\) in state_dict: (.*)")):
        m = re.search(pattern, text)
        if m:
            keys = re.findall(r'"([^"]+)"', m.group(1))
            parts.append(f"{len(keys)} {label} key(s) (e.g. {keys[0]})" if keys else label)
    sizes = re.findall(r"size mismatch for ([^:]+): copying a param with shape "
                       r"torch.Size\(\[([^\]]*)\]\) from checkpoint, the shape in current "
                       r"model is torch.Size\(\[([^\]]*)\]\)", text)
    if sizes:
        name, have, want = sizes[0]
        parts.append(f"{len(sizes)} shape mismatch(es) (e.g. {name}: file ({have}) vs "
                     f"model ({want}))")
    return (f"--weights {weights} do not fit {spec}: " + ", ".join(parts or [one_line(text)]))


def load(spec: str, weights: str | Path | None):
    """:func:`faithmap.zoo.model_spec.load_model` for the command line: options that do not
    apply and every loading failure are one-line errors (:func:`fail`), DataParallel
    prefixes are stripped, ``module.path`` is also looked up in the current directory, and
    the random-weights warning is left to :func:`note_random_weights`."""
    import torch

    from ..zoo.model_spec import load_model

    kind, sep, rest = spec.partition(":")
    if kind == "zoo" and weights is not None:
        raise fail(f"--weights does not apply to {spec}: zoo models load their shipped "
                   "weights (use --model module.path:factory, torchvision:ARCH or timm:NAME "
                   "for your own)")
    notes: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        if weights is not None:
            state, notes = _read_state_dict(weights)
            clean = Path(tmp) / "weights.pt"
            torch.save(state, clean)
        try:
            with warnings.catch_warnings(), _current_directory_importable():
                warnings.simplefilter("ignore", UserWarning)
                loaded = load_model(spec, None if weights is None else clean)
        except click.ClickException:
            raise
        except ModuleNotFoundError as exc:
            if kind == "timm":
                raise fail(f"--model {spec}: {one_line(exc)}") from exc
            raise fail(f"--model {spec}: cannot import {kind!r} ({one_line(exc)}; looked in "
                       "the current directory and on sys.path)") from exc
        except RuntimeError as exc:
            if "loading state_dict" in str(exc):
                raise fail(_mismatch(exc, weights, spec)) from exc
            raise fail(f"--model {spec}: {one_line(exc)}") from exc
        except Exception as exc:  # noqa: BLE001 - reported to the user as a usage error
            raise fail(f"--model {spec}: {one_line(exc)}"
                       if spec not in str(exc) else one_line(exc)) from exc
    for note in notes:
        click.echo(note, err=True)
    return loaded


def note_random_weights(loaded, spec: str) -> None:
    if loaded.random_weights:
        click.echo(f"note: {spec} has random weights (pass --weights FILE)", err=True)


def probe(model, shape: tuple[int, ...], device, what: str) -> int:
    """The model's class count from one forward pass of a zero batch of ``shape``; a model
    that cannot take it is a one-line error starting with ``what``."""
    import torch

    try:
        with torch.no_grad():
            out = model(torch.zeros(1, *shape, device=device))
    except Exception as exc:  # noqa: BLE001 - any failure here means the size does not fit
        raise fail(f"{what} ({type(exc).__name__}: {one_line(exc, 120)})") from exc
    if not isinstance(out, torch.Tensor) or out.dim() != 2:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise fail(f"{what}: the model returns {got}, not N×classes scores")
    return int(out.shape[1])


def shape_text(shape: tuple[int, ...]) -> str:
    return "×".join(str(s) for s in shape)


def check_target(target: int | None, classes: int) -> None:
    if target is not None and not 0 <= target < classes:
        raise click.BadParameter(f"{target} is out of range: the model has {classes} classes "
                                 f"(0..{classes - 1})", param_hint="--target")


def build(model, method: str, options: dict[str, Any], where: str = "--method",
          spec: str = "the model"):
    """``get_explainer`` with one-line errors: unknown method, unknown or invalid option, a
    method that does not apply to the model (``comet`` for a classifier its checkpoint was
    not trained with)."""
    import inspect

    from ..core.registry import METHODS, get_explainer
    from ..methods.comet import ModelMismatchError

    try:
        return get_explainer(model, method, **options)
    except ModelMismatchError as exc:
        raise fail(f"{where} {method} does not apply to {spec}: {one_line(exc)}") from exc
    except TypeError as exc:
        bad = re.search(r"unexpected keyword argument '([^']+)'", str(exc))
        if bad is None:
            raise fail(f"{where} {method}: {one_line(exc)}") from exc
        known = ""
        if method in METHODS:
            params = inspect.signature(METHODS.get(method).__init__).parameters
            known = "; its options: " + ", ".join(
                p for p, v in params.items() if v.kind == v.KEYWORD_ONLY)
        raise fail(f"{where} {method} has no option {bad.group(1)!r}{known}") from exc
    except Exception as exc:  # noqa: BLE001 - unknown method, invalid value, missing file
        raise fail(f"{where} {method}: {one_line(exc)}"
                   if method not in str(exc) else one_line(exc)) from exc


def check_out_dir(out: Path, flag: str = "--out") -> None:
    """``out`` is (or can be made) a writable folder: checked before any compute."""
    if out.exists() and not out.is_dir():
        raise fail(f"{flag} {out} is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".faithmap-write-test-"):
            pass
    except OSError as exc:
        raise fail(f"{flag} {out} is not writable ({exc.strerror or one_line(exc)})") from exc


@contextmanager
def counting_passes(model, on_forward=None) -> Iterator[dict[str, int]]:
    """Count rows through ``model`` while open: ``{"forward": rows, "backward": rows}``
    (backward: rows whose output received a gradient); ``on_forward(rows)`` is called after
    each forward pass (a progress bar). Hooks are removed on exit."""
    import torch

    counts = {"forward": 0, "backward": 0, "calls": 0}

    def on_backward(grad, rows):
        counts["backward"] += rows
        return grad

    def hook(_module, inputs, output):
        rows = int(output.shape[0]) if isinstance(output, torch.Tensor) and output.dim() else 1
        counts["forward"] += rows
        counts["calls"] += 1
        if on_forward is not None:
            on_forward(rows)
        if isinstance(output, torch.Tensor) and output.requires_grad:
            output.register_hook(lambda g, r=rows: on_backward(g, r))

    handle = model.register_forward_hook(hook)
    try:
        yield counts
    finally:
        handle.remove()


def check_evaluation(model, loaded, spec: str, data: list[str], methods: list[str] | None,
                     method_options: dict[str, dict[str, Any]], metrics: list[str] | None,
                     out: str | Path, seed: int) -> None:
    """What ``faithmap evaluate`` checks before the run, each a one-line error: the output
    folder is writable; every dataset exists and its image size fits the model; named
    methods, their options and metrics exist; COMET is asked only of its own detector."""
    from ..evaluation.blocks import metric_function
    from ..evaluation.data import load_eval_data

    check_out_dir(Path(out))
    device = next((p.device for p in model.parameters()), "cpu")
    for name in data:
        if Path(name).is_dir():
            side = loaded.input_size or 224
            shape: tuple[int, ...] = (loaded.channels, side, side)
        else:
            try:
                shape = tuple(load_eval_data(name, n=1, seed=seed, size=loaded.input_size,
                                             channels=loaded.channels).images.shape[1:])
            except Exception as exc:  # noqa: BLE001 - unknown dataset, unreadable folder
                raise fail(f"--data {name}: {one_line(exc)}") from exc
        probe(model, shape, device, f"{spec} cannot take {name}'s {shape_text(shape)} images"
              + (f" (it takes {loaded.input_size}×{loaded.input_size})"
                 if loaded.input_size else ""))
    for method in methods or []:
        build(model, method, method_options.get(method, {}), where="--methods", spec=spec)
    unknown = sorted(set(method_options) - set(methods)) if methods else []
    if unknown:
        raise fail(f"--method-option {unknown[0]}.…: {unknown[0]} is not among --methods")
    for metric in metrics or []:
        try:
            metric_function(metric)
        except Exception as exc:  # noqa: BLE001 - an unknown metric name
            raise fail(f"--metrics {metric}: {one_line(exc)}"
                       if metric not in str(exc) else one_line(exc)) from exc
