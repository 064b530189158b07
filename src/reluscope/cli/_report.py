"""`reluscope report`: every analysis on one model, in one HTML file."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

from ._common import common_options, echo, failure_status


@click.command()
@click.option("--model", default=None, type=click.Path(dir_okay=False),
              help="Model file to analyse (default: train --arch on --data).")
@click.option("--data", default="digits", show_default=True, help="Data set name or path.")
@click.option("--arch", default="mlp:256-256", show_default=True,
              help="Architecture to train without --model.")
@click.option("--epochs", type=int, default=30, show_default=True, help="Training epochs without --model.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              default=Path("reluscope-report"), show_default=True, help="Output folder.")
@click.option("--full", is_flag=True, help="Full-size analyses instead of the quick configuration.")
@click.option("--only", multiple=True, help="Only these sections (repeatable), e.g. --only spectrum.")
@common_options
def report(model, data, arch, epochs, out, full, only, seed, device, quiet):
    """Run the analyses on one model and write OUT/index.html (self-contained)."""
    from ..report._run import run_report

    command = "reluscope " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    path, outcomes = run_report(model=model, data=data, arch=arch, epochs=epochs, seed=seed,
                                device=device, quick=not full, out_dir=out, command=command,
                                only=list(only) or None)
    for o in outcomes:
        echo(f"  {o.title:<40} {o.status:<15} {o.seconds:6.1f} s" + (f"  ({o.message})" if o.message else ""))
    click.echo(f"report written to {path}")
    return failure_status(outcomes)
