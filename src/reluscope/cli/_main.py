"""The `reluscope` command: a lazy group (subcommands import torch only when run)."""

from __future__ import annotations

import importlib

import click

from ..errors import ReluscopeError

# name -> "module:attribute" of a click command. One line per analysis.
_SUBCOMMANDS = {
    "info": "reluscope.cli._info:info",
    "train": "reluscope.cli._train:train",
    "report": "reluscope.cli._report:report",
    "sweep": "reluscope.sweep.cli:sweep",
    "reproduce": "reluscope.reproduce.cli:reproduce",
    "teacher": "reluscope.teacher.cli:command",
    "preimage": "reluscope.preimage.cli:command",
    "shadow": "reluscope.shadow.cli:command",
    "spectrum": "reluscope.spectrum.cli:command",
    "jacobian": "reluscope.jacobian.cli:command",
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(_SUBCOMMANDS)

    def get_command(self, ctx, name):
        if name not in _SUBCOMMANDS:
            return None
        module, attr = _SUBCOMMANDS[name].split(":")
        return getattr(importlib.import_module(module), attr)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="reluscope")
def cli():
    """reluscope: is this ReLU net reversible, invertible, stable, and what did it learn?"""


def main(argv=None) -> int:
    """Entry point; returns the exit status: user errors print one line and give 2."""
    try:
        status = cli.main(args=argv, standalone_mode=False)
    except ReluscopeError as exc:
        click.echo(f"reluscope: error: {exc}", err=True)
        return 2
    except click.exceptions.Abort:
        click.echo("reluscope: interrupted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return 2 if exc.exit_code == 2 else exc.exit_code
    except KeyboardInterrupt:
        click.echo("reluscope: interrupted", err=True)
        return 130
    return status if isinstance(status, int) else 0  # commands may return a status (1: a part failed)

