"""`reluscope report`: every analysis on one model, in one HTML file."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

from ._common import common_options, echo, failure_status


@click.command()
@click.option("--model", default=None, type=click.Path(dir_okay=False),
              help="Model file to analyse (default: the model zoo's --arch trained on --data).")
@click.option("--data", default="digits", show_default=True, help="Data set name or path.")
@click.option("--arch", default=None,
              help="Zoo architecture without --model: mlp:W1-W2-..., cifar_cnn, resnet20 "
                   "(He et al. 2016) or resnet18 (CIFAR layout); trained once, then read from the cache "
                   "[default: mlp:256-256]. With --model: the architecture of a state_dict file.")
@click.option("--epochs", type=int, default=None,
              help="Training epochs without --model [default: 30 for MLPs, 2 for conv nets].")
@click.option("--max-train", type=int, default=-1,
              help="Train on the first N training samples without --model [default: all for MLPs, "
                   "4000 for conv nets; 0: all].")
@click.option("--no-cache", is_flag=True,
              help="Train afresh instead of reading the zoo cache ($RELUSCOPE_CACHE), and keep nothing.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              default=Path("reluscope-report"), show_default=True, help="Output folder.")
@click.option("--full", is_flag=True, help="Full-size analyses instead of the quick configuration.")
@click.option("--only", multiple=True, help="Only these sections (repeatable), e.g. --only spectrum.")
@click.option("--trust-pickle", is_flag=True,
              help="Allow reading a whole pickled --model: this runs code named in the file, so only "
                   "for files you trust (or set RELUSCOPE_TRUST_PICKLE=1).")
@common_options
def report(model, data, arch, epochs, max_train, no_cache, out, full, only, trust_pickle, seed, device,
           quiet):
    """Run the analyses on one model and write OUT/index.html (self-contained)."""
    from ..report._build import build_report
    from ..report._run import DEFAULT_ARCH, run_report

    command = "reluscope " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    only = list(only) or None
    if model is None:
        ctx = _zoo_context(arch or DEFAULT_ARCH, data, epochs, max_train, not no_cache, seed, device, out,
                           not full, command)
        path, outcomes = build_report(ctx, only=only)
    else:
        path, outcomes = run_report(model=model, data=data, seed=seed, device=device, quick=not full,
                                    out_dir=out, command=command, only=only, file_arch=arch,
                                    trust_pickle=trust_pickle or None)
    for o in outcomes:
        echo(f"  {o.title:<40} {o.status:<15} {o.seconds:6.1f} s" + (f"  ({o.message})" if o.message else ""))
    click.echo(f"report written to {path}")
    return failure_status(outcomes)


def _zoo_context(arch, data, epochs, max_train, cache, seed, device, out, quick, command):
    """The report context of the zoo's `arch` trained on `data` (cached between runs)."""
    from .. import zoo
    from ..errors import ConfigError
    from ..report._registry import ReportContext
    from ..train import TrainResult

    if max_train < -1:
        raise ConfigError(f"--max-train must be 0 (all) or a positive count, got {max_train}")
    tm = zoo.get(arch, data, epochs=epochs, max_train=max_train, seed=seed, device=device, cache=cache)
    if tm.cached:
        echo(f"{arch}: read from the zoo cache ({tm.path})")
    else:
        echo(f"{arch}: trained {len(tm.history)} epochs" + (f", cached in {tm.path}" if cache else ""))
    training = TrainResult(tm.model, tm.config, tm.history)
    return ReportContext(model=tm.model, net=tm.net, data=tm.data, seed=seed, device=device,
                         out_dir=Path(out), quick=quick, training=training, init_model=tm.init_model,
                         command=command)
