"""What the commands share: option parsing, model loading and the common options."""

from __future__ import annotations

import ast
import warnings
from pathlib import Path
from typing import Any

import click

MODEL_HELP = "torchvision:ARCH, zoo:NAME or module.path:factory"
DEVICES = click.Choice(["auto", "cpu", "cuda"])


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


def load(spec: str, weights: str | Path | None):
    """:func:`faithmap.zoo.model_spec.load_model` without its random-weights warning (the
    commands print :func:`note_random_weights` instead)."""
    from ..zoo.model_spec import load_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return load_model(spec, weights)


def note_random_weights(loaded, spec: str) -> None:
    if loaded.random_weights:
        click.echo(f"note: {spec} has random weights (pass --weights FILE)", err=True)
