"""`reluscope reproduce arora|behrmann|tian|all`: each paper's figures and claims."""

from __future__ import annotations

from pathlib import Path

import click

from ..cli._common import common_options, echo, failure_status


@click.command()
@click.argument("paper", type=click.Choice(["arora", "behrmann", "tian", "all"]))
@click.option("--part", "parts", multiple=True, help="Only these parts (repeatable).")
@click.option("--full", is_flag=True, help="The full-size configuration (slow) instead of the quick one.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              default=Path("reluscope-reproduce"), show_default=True)
@click.option("--mnist", default=None, help="MNIST: IDX folder (default ../shared/data/mnist if present).")
@click.option("--cifar", default=None, help="CIFAR-10: ImageFolder tree or torchvision:CIFAR10.")
@common_options
def reproduce(paper, parts, full, out, mnist, cifar, seed, device, quiet):
    """Regenerate PAPER's figures on the data at hand, with a claims table per paper."""
    from ._registry import PAPERS, ReproConfig
    from ._run import reproduce as run

    cfg = ReproConfig(quick=not full, seed=seed, device=device, out_dir=out)
    cfg.mnist, cfg.cifar = mnist or cfg.mnist, cifar or cfg.cifar
    papers = list(PAPERS) if paper == "all" else [paper]
    every = []
    if parts and len(papers) > 1:
        raise click.UsageError("--part needs one paper, not all")
    for p in papers:
        path, outcomes = run(p, cfg, only=list(parts) or None)
        every += outcomes
        for o in outcomes:
            echo(f"  {p:<9} {o.title:<50} {o.status:<15} {o.seconds:6.1f} s")
        claims = [c for o in outcomes for c in o.claims]
        click.echo(f"{p}: {sum(c.holds is True for c in claims)} of {len(claims)} claims hold; "
                   f"written to {path}")
    return failure_status(every, "parts")
