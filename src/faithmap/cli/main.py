"""The ``faithmap`` command group; each command lives in its own module of this package."""

from __future__ import annotations

import inspect
import re
import sys

import click

from .bench import bench
from .comet import train_comet
from .evaluate import demo, evaluate
from .explain import explain
from .zoo import zoo


class OneLineErrors(click.Group):
    """A command group whose usage errors are one line: ``Error: <what> (see '<cmd> --help')``
    instead of click's usage block + hint + message (issue 19)."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True,
             **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, False, **extra)
        except click.UsageError as exc:
            where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            click.echo(f"Error: {exc.format_message()}{where}", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)


@click.group(cls=OneLineErrors)
@click.version_option(package_name="faithmap")
def main() -> None:
    """faithmap: faithful, robust feature attribution for image classifiers."""


def _docs_of(cls: type) -> str:
    """The class docstrings along ``cls``'s MRO (its own first), one string."""
    return "\n".join(inspect.getdoc(c) or "" for c in cls.__mro__
                     if c is not object and "__doc__" in c.__dict__ and c.__doc__)


def _clause(doc: str, name: str, limit: int = 110) -> str:
    """What ``doc`` says of ````name````, as one line: from its first mention to the end of
    that clause (``;``, a sentence end, or the next ``, ``other```` of a list, outside
    parentheses); from the clause's start when the mention is inside parentheses. Sphinx
    roles are shown as their target's last name. '' when ``doc`` never names it."""
    at = doc.find(f"``{name}``")
    if at < 0:
        at = doc.find(f"``{name}=")
    if at < 0:
        return ""
    ends, depth, depth_at = [], 0, 0
    for i, ch in enumerate(doc):
        if i == at:
            depth_at = depth
        depth += (ch == "(") - (ch == ")")
        if depth <= 0 and (ch == ";" or (ch == "." and doc[i + 1:i + 2] in (" ", "\n", ""))):
            ends.append(i)
            depth = 0
        elif depth <= 0 and i > at and doc.startswith(", ``", i):
            ends.append(i)
    start = at if depth_at == 0 else max([e + 1 for e in ends if e < at], default=0)
    end = min([e for e in ends if e >= at + len(name) + 4], default=len(doc))
    text = re.sub(r":\w+:`~?([^`]+)`", lambda m: m.group(1).split(".")[-1], doc[start:end])
    text = " ".join(text.replace("``", "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def method_options(cls: type) -> list[tuple[str, str, str, str]]:
    """(option, default, type, one-line doc) of each option of explainer class ``cls``, from
    its ``__init__`` signature, following ``**options`` to the parent's, and its docstrings."""
    rows: list[tuple[str, str, str, str]] = []
    seen: set[str] = set()
    doc = _docs_of(cls)
    for c in cls.__mro__:
        if "__init__" not in c.__dict__ or c is object:
            continue
        params = list(inspect.signature(c.__init__).parameters.values())[1:]
        more = False
        for p in params:
            if p.kind is p.VAR_KEYWORD:
                more = True
                continue
            if p.kind is p.VAR_POSITIONAL or p.name in ("model", *seen):
                continue
            seen.add(p.name)
            default = "(required)" if p.default is p.empty else repr(p.default)
            kind = "" if p.annotation is p.empty else (
                p.annotation if isinstance(p.annotation, str) else
                getattr(p.annotation, "__name__", str(p.annotation)))
            text = _clause(doc, p.name) or (
                "rows per forward pass" if p.name == "batch_size" else "")
            rows.append((p.name, default, kind, text))
        if not more:
            break
    return rows


def options_text(name: str) -> str:
    """What ``faithmap methods --options NAME`` prints: the options table and the presets."""
    from ..core.presets import format_options, presets_of
    from ..core.registry import METHODS

    cls = METHODS.get(name)
    rows = [("option", "default", "type", "doc"), *method_options(cls)]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    summary = (inspect.getdoc(cls) or " ").splitlines()[0].replace("``", "")
    lines = [f"{cls.name}: {cls.__module__}.{cls.__qualname__} — {summary}", ""]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r[:3], widths)) + "  " + r[3]
              for r in rows]
    lines += ["", "presets (faithmap explain --preset NAME; -o KEY=VALUE overrides):"]
    for preset, p in presets_of(name).items():
        lines.append(f"  {preset}: {format_options(p.options)}"
                     + (f"  — {p.source}" if p.source else ""))
    return "\n".join(line.rstrip() for line in lines)


@main.command()
@click.option("--options", "options_of", metavar="NAME", default=None,
              help="list the options of method NAME (default, type, doc) and its presets")
def methods(options_of: str | None) -> None:
    """List the registered attribution methods (--options NAME: one method's options)."""
    from ..core.registry import METHODS, available_methods

    if options_of is None:
        for name in available_methods():
            click.echo(name)
        return
    if options_of not in METHODS:
        prefixed = METHODS.prefix_factory(options_of) is not None
        raise click.BadParameter(
            f"{options_of!r} is an adapter name: its options are the wrapped library's"
            if prefixed else f"unknown method {options_of!r}; available: "
            f"{', '.join(available_methods())}", param_hint="--options")
    click.echo(options_text(options_of.strip().lower()))


for command in (explain, evaluate, demo, bench, zoo, train_comet):
    main.add_command(command)
