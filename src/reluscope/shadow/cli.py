"""`reluscope shadow`: the theorem experiments, reconstructions, SHADOW training."""

from __future__ import annotations

from pathlib import Path

import click

from .._io import write_json
from ..cli import (
    common_options,
    echo,
    json_option,
    load_model,
    model_file_options,
    table_options,
    write_results,
    write_tables,
)


@click.group("shadow")
def command():
    """The shadow generative model: run a ReLU net backwards (Arora, Liang, Ma 2015)."""


def _save(fig, path: Path | None) -> None:
    if path is None:
        import matplotlib.pyplot as plt

        plt.close(fig)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    echo(f"figure written to {path}")


@command.command()
@click.option("--full", is_flag=True, help="Full-size sweep (n up to 4096 and more; minutes).")
@click.option("--exact-k", is_flag=True,
              help="Keep exactly k coordinates per layer (else independent keeps).")
@click.option("--plot-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write theorem1.png and multilayer.png here.")
@json_option
@table_options
@common_options
def theory(full, exact_k, plot_dir, json_path, csv_path, parquet_path, seed, device, quiet):
    """Theorems 1, 3.1, 3.2 on Gaussian layers: error against k/t with log-log slopes."""
    from ._plots import plot_multilayer, plot_theorem1
    from ._theory import run_theory
    from ._theory_measures import regime

    lines = {} if quiet else dict(echo=click.echo)  # one line per multilayer run: sizes, conditions, errors
    res = run_theory(full=full, seed=seed, exact_k=exact_k, device=device, **lines)
    t1 = res.theorem1
    click.echo("Theorem 1 (one layer): log-log slope of error vs k/t: "
               + ", ".join(f"{r} {s:.2f}" for r, s in t1.slopes.items()))
    for m in res.multilayer:
        design = f", {m.design}" if m.design else ""
        click.echo(f"Theorem 3.{m.depth - 1} ({m.depth} layers{design}): slope of the relative error vs "
                   "ratio over the unsaturated runs meeting the conditions: "
                   + ", ".join(f"{r} {s:.2f} ({m.fitted.get(r, 0)} runs)" for r, s in m.slopes.items())
                   + f"; regime: {regime(m.runs)}")
    if plot_dir is not None:
        _save(plot_theorem1(t1), plot_dir / "theorem1.png")
        _save(plot_multilayer(res.multilayer), plot_dir / "multilayer.png")
    write_results(json_path, res)
    write_tables(res, csv_path, parquet_path)


def _layers(text: str | None):
    if not text:
        return None
    return [int(t) if t.strip().lstrip("-").isdigit() else t.strip() for t in text.split(",") if t.strip()]


@command.command()
@click.argument("model", type=click.Path(exists=True, dir_okay=False))
@click.option("--data", default="digits", show_default=True, help="Data set whose test images to use.")
@click.option("--images", type=int, default=16, show_default=True, help="Number of test images.")
@click.option("--layers", default=None, help="Comma-separated layer indices or names (default: every ReLU).")
@click.option("--rho", type=float, default=0.5, show_default=True, help="Keep probability of the noise.")
@click.option("--alpha", default="fit", show_default=True, help="fit, scaled, paper or a number.")
@click.option("--input-shape", default=None, help="e.g. 1,28,28 when the model file lacks it.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the image grid (PNG) here.")
@click.option("--batch", type=int, default=None,
              help="Images per batch (default: all in one); each batch fits its own alpha and noise.")
@click.option("--scheduler", default=None,
              help="Dask scheduler address, e.g. tcp://HOST:8786, to run the batches on a cluster "
                   "(same results as a local run with the same --batch).")
@model_file_options
@json_option
@table_options
@common_options
def reconstruct(model, data, images, layers, rho, alpha, input_shape, plot, batch, scheduler, json_path,
                csv_path, parquet_path, seed, device, quiet):
    """Reconstruct test images from each hidden layer: trained vs random weights."""
    from ..data import load as load_data
    from ..errors import ConfigError
    from ._plots import plot_reconstruction
    from ._reconstruct import reconstruct as run

    if images < 1:
        raise ConfigError(f"--images must be at least 1, got {images}")
    if batch is not None and batch < 1:
        raise ConfigError(f"--batch must be at least 1, got {batch}")
    ds = load_data(data, seed=seed)
    net = load_model(model, ds, input_shape).copy(device=device)
    try:
        alpha_v = float(alpha)
    except ValueError:
        alpha_v = alpha
    x = ds.test.x[:images]
    x = x[x.flatten(1).abs().sum(1) > 0]
    if scheduler and batch is None:
        echo("all images in one batch, so one task: pass --batch N to spread them over the workers")
    res = run(net, x, layers=_layers(layers), rho=rho, alpha=alpha_v, generator=seed, batch=batch,
              scheduler=scheduler)
    for lay in res.layers:
        t, r = lay.errors["trained"]["mean"], lay.errors["random"]["mean"]
        click.echo(f"layer {lay.layer} ({lay.name}, {lay.units} units): input error trained "
                   f"{t['input']:.3f} / random {r['input']:.3f}; hidden error trained "
                   f"{t['hidden']:.3f} / random {r['hidden']:.3f}")
    if plot is not None:
        _save(plot_reconstruction(res), plot)
    write_results(json_path, dict(model=str(model), data=ds.spec.to_dict(), **res.to_dict()))
    write_tables(res, csv_path, parquet_path)


def _budgets(text: str):
    out = []
    for t in filter(None, (s.strip() for s in text.split(","))):
        if t == "all":
            out.append(None)
        elif t.isdigit():
            out.append(int(t))
        else:
            from ..errors import ConfigError

            raise ConfigError(f"bad label budget '{t}'; write e.g. 100,500,all")
    return tuple(out)


def _floats(text: str, what: str):
    from ..errors import ConfigError

    try:
        return tuple(float(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise ConfigError(f"bad {what} '{text}'; write comma-separated numbers") from None


@command.command("train")
@click.option("--data", default="digits", show_default=True,
              help="digits, a folder of MNIST IDX files, an ImageFolder tree (e.g. CIFAR-10).")
@click.option("--arch", default="auto", show_default=True,
              help="Architecture (auto: mlp:256-256, or cifar_cnn for 3-channel images).")
@click.option("--full", is_flag=True, help="Full configuration: budgets 100,500,1000,all (CIFAR: 1000,all), "
              "5 seeds, an lr grid, 3000 steps (CIFAR: 2500), layer and rho sweeps (hours on a CPU).")
@click.option("--budgets", default=None, help="Label budgets, e.g. 100,500,all.")
@click.option("--seeds", type=int, default=None, help="Seeds per arm.")
@click.option("--steps", type=int, default=None, help="Gradient steps per run (same for every arm).")
@click.option("--lrs", default=None, help="Learning-rate grid tuned per arm on validation.")
@click.option("--optimizer", type=click.Choice(["sgd", "adam"]), default=None,
              help="Default: sgd (momentum 0.9), adam for 3-channel images.")
@click.option("--dropout", type=float, default=0.5, show_default=True)
@click.option("--layer", default=None, help="Where the SHADOW codes come from: first (default: the first "
              "hidden layer, the theory's one-layer setting), top, output, or a layer index or name.")
@click.option("--rho", type=float, default=None, help="Keep probability of the shadow noise (default 0.75).")
@click.option("--ratio", type=float, default=None, help="Synthetic samples per real one (default 0.25).")
@click.option("--scale", type=click.Choice(["data", "model"]), default=None,
              help="data (default): each sample at its real image's norm; model: the shadow model's scale.")
@click.option("--no-clip", is_flag=True, help="Do not clip synthetic inputs to the batch's value range.")
@click.option("--weight", type=float, default=None,
              help="Weight w of the synthetic loss: real mean loss + w x synthetic mean loss (default: the "
              "synthetic samples join the batch mean).")
@click.option("--warmup", type=float, default=None, help="Fraction of the steps before SHADOW starts.")
@click.option("--input-dropout", type=float, default=None,
              help="Dropout on the net's input in the SHADOW arms (the net sees x * n, as x~ is noisy).")
@click.option("--max-test", type=int, default=None, help="Evaluate on N random test samples only.")
@click.option("--curve-points", type=int, default=None,
              help="Test evaluations per run, log-spaced in epochs (default 40).")
@click.option("--sweep-layers", default=None, help="'all' or layer indices for the layer sweep.")
@click.option("--sweep-rhos", default=None, help="rho values for the rho sweep, e.g. 0.25,0.5,1.")
@click.option("--sweep-ratios", default=None, help="Ratios for the ratio sweep, e.g. 0.1,1.")
@click.option("--sweep-weights", default=None, help="Synthetic-loss weights to sweep, e.g. 0.1,0.5,1.")
@click.option("--sweep-warmups", default=None, help="Warm-up fractions to sweep, e.g. 0.25,0.5.")
@click.option("--sweep-input-dropouts", default=None, help="Input dropout rates to sweep, e.g. 0.1,0.2.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the test-error curves (PNG) here.")
@click.option("--resume", is_flag=True, help="Keep the finished arms of the --json file (same options) "
              "and run only the rest: a stopped long run continues where it stopped.")
@json_option
@table_options
@common_options
def train_cmd(data, arch, full, budgets, seeds, steps, lrs, optimizer, dropout, layer, rho, ratio, scale,
              no_clip, weight, warmup, input_dropout, max_test, curve_points, sweep_layers, sweep_rhos,
              sweep_ratios, sweep_weights, sweep_warmups, sweep_input_dropouts, plot, resume, json_path,
              csv_path, parquet_path, seed, device, quiet):
    """SHADOW training: baseline, dropout, SHADOW, dropout+SHADOW at equal gradient steps.

    Starts from the configuration of the data set (the one `reluscope reproduce arora`
    uses: quick, or --full); every option given overrides its part.
    """
    from dataclasses import replace

    from ._experiment import shadow_experiment
    from ._plots import plot_shadow_curves
    from .experiment_report import experiment_config

    kind = "cifar" if _channels(data) == 3 else ("digits" if data == "digits" else "mnist")
    cfg = experiment_config(kind, data, quick=not full, seed=seed)
    kw = dict(dropout=dropout, device=device)
    if no_clip:
        kw["clamp"] = None
    if arch != "auto":
        kw["arch"] = arch
    if layer is not None:
        kw["layer"] = int(layer) if layer.lstrip("-").isdigit() else layer
    given = dict(budgets=budgets and _budgets(budgets), seeds=seeds, steps=steps, optimizer=optimizer,
                 lrs=lrs and _floats(lrs, "learning rates"), max_test=max_test, curve_points=curve_points,
                 rho=rho, ratio=ratio, scale=scale, weight=weight, warmup=warmup, input_dropout=input_dropout,
                 sweep_rhos=sweep_rhos and _floats(sweep_rhos, "rho values"),
                 sweep_ratios=sweep_ratios and _floats(sweep_ratios, "ratios"),
                 sweep_weights=sweep_weights and _floats(sweep_weights, "weights"),
                 sweep_warmups=sweep_warmups and _floats(sweep_warmups, "warm-up fractions"),
                 sweep_input_dropouts=sweep_input_dropouts and _floats(sweep_input_dropouts, "dropout rates"))
    if sweep_layers:
        given["sweep_layers"] = ("all",) if sweep_layers == "all" else tuple(_layers(sweep_layers))
    cfg = replace(cfg, **kw, **{k: v for k, v in given.items() if v is not None})
    previous = None
    if resume:
        if json_path is None:
            from ..errors import ConfigError

            raise ConfigError("--resume continues the run saved in --json PATH; give --json")
        if json_path.exists():
            previous = _read_result(json_path)
            echo(f"resuming from {json_path}: {len(previous.arms)} arms, {len(previous.sweeps)} sweep points")
    # with --json, every finished arm is saved at once: a stopped run keeps its finished arms
    save = None if json_path is None else (lambda partial: write_json(json_path, partial))
    res = shadow_experiment(cfg, on_progress=save, resume=previous)
    for a in res.arms:
        click.echo(f"budget {a.budget:>6} {a.arm:>15}: test error {a.mean:.4f} ± {a.std:.4f} (lr {a.lr})")
    for c in res.comparisons():
        click.echo(f"budget {c.budget}: {c.arm} vs {c.reference}: {c.verdict} "
                   f"({c.mean_diff:+.4f} ± {c.se:.4f}, paired over {c.n} seeds)")
    for p in res.sweeps[1:]:
        click.echo(f"sweep at {p['budget']}: {p['label']:>18}: validation error {p['mean']:.4f} "
                   f"({p['diff']:+.4f} vs baseline, {p['verdict']})")
    if res.best:
        b = res.best
        click.echo(f"best on validation: {b['label']}; on test vs baseline: {b['verdict']} "
                   f"({b['mean_diff']:+.4f} ± {b['se']:.4f})")
    if plot is not None:
        _save(plot_shadow_curves(res), plot)
    write_results(json_path, res)
    write_tables(res, csv_path, parquet_path)


@command.command("report")
@click.argument("results", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("reluscope-shadow"),
              show_default=True, help="Folder for shadow-training.html and its JSON.")
@click.option("--quiet", "-q", is_flag=True, help="No chatter.")
def report_cmd(results, out, quiet):
    """Render saved `shadow train --json` results (finished or partial) as one HTML page:
    tables, curves, sweeps and the paired verdicts, one block per file."""
    from .. import _progress
    from ..report._build import run_sections, write_page
    from ..report._registry import Entry
    from .experiment_report import summarise, training_section

    _progress.set_quiet(quiet)
    loaded = {}
    for path in results:
        res = _read_result(path)
        name = Path(res.config.data).name or res.config.data
        loaded[name if name not in loaded else f"{name} ({path.name})"] = res
    entry = Entry("shadow-training", "SHADOW training", 0,
                  lambda _: training_section(*summarise(loaded, quick=False)))
    out.mkdir(parents=True, exist_ok=True)
    rendered, outcomes = run_sections([entry], None, out, strict=True)
    meta = [("results", ", ".join(map(str, results)))]
    page = write_page(out / "shadow-training.html", "SHADOW training", "Saved SHADOW training runs: does "
                      "training on shadow-model samples lower the test error?", meta, rendered, outcomes)
    click.echo(f"report written to {page}")


def _read_result(path: Path):
    import json

    from ..errors import ConfigError
    from ._experiment import ShadowTrainResult

    try:
        return ShadowTrainResult.from_dict(json.loads(path.read_text()))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ConfigError(f"{path} is not a JSON file; give the --json file of 'reluscope shadow train'") \
            from None


def _channels(data: str) -> int:
    from ..data import load as load_data

    return load_data(data).spec.shape[0]
