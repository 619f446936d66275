"""The ``faithmap`` command group; each command lives in its own module of this package."""

from __future__ import annotations

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


@main.command()
def methods() -> None:
    """List the registered attribution methods."""
    from ..core.registry import available_methods

    for name in available_methods():
        click.echo(name)


for command in (explain, evaluate, demo, bench, zoo, train_comet):
    main.add_command(command)
