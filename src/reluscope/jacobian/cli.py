"""`reluscope jacobian MODEL --data D`: singular values of every layer's Jacobian."""

from __future__ import annotations

from pathlib import Path

import click

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


def _table(header, rows) -> str:
    from ..report._html import fmt

    cells = [[str(h) for h in header]] + [[fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _matfree_rows(spec) -> tuple[list[str], list[tuple]]:
    """The matrix-free outputs, first sample: top singular values, σ_min and its status, rank
    estimate, density summary (zero mass, median nonzero eigenvalue of J^T J, Kolmogorov bound)."""
    import numpy as np

    header = ["node", "σ_1", "σ_2", "σ_3", "top-k conv", "σ_min (status)", "rank ± se [lo, hi]",
              "zero mass ± se", "median λ>0", "KS bound", "products", "s"]
    rows = []
    for s in spec:
        if not s.estimated:
            continue
        r = s.matfree[0]
        top = [f"{v:.4g}" for v in r.top[:3]] + ["–"] * (3 - min(3, len(r.top)))
        d = r.density
        if d is not None:
            nodes, weights = d.nodes.ravel(), d.weights.ravel()  # quadrature over all probes
            keep = nodes > 0
            order = np.argsort(nodes[keep])
            cum = np.cumsum(weights[keep][order])
            half = int(np.searchsorted(cum, cum[-1] / 2)) if cum.size and cum[-1] > 0 else -1
            med = f"{nodes[keep][order][half]:.3g}" if half >= 0 else "–"
            dens = (f"{d.zero_mass:.3f} ± {d.zero_mass_se:.3f}", med, f"{d.ks_bound:.3f}")
        else:
            dens = ("–", "–", "–")
        rows.append((s.output.name, *top, "yes" if r.converged else "no",
                     f"{r.sigma_min:.3g} ({r.sigma_min_status})",
                     f"{r.rank:,.0f} ± {r.rank_se:,.0f} [{r.rank_lo:,.0f}, {r.rank_hi:,.0f}]", *dens,
                     r.products, f"{r.seconds:.1f}"))
    return header, rows


def _fit_inputs(x, shape):
    """`x` (B, C, H, W) resized to the net's image shape (bilinear; one channel repeated to
    C), or None where the shapes are not both images."""
    import torch

    if x.dim() != 4 or len(shape) != 3 or (x.shape[1] != shape[0] and x.shape[1] != 1):
        return None
    x = torch.nn.functional.interpolate(x.float(), size=tuple(shape[1:]), mode="bilinear",
                                        align_corners=False)
    return x.expand(-1, shape[0], -1, -1).contiguous()


@click.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--data", default="digits", show_default=True, help="Data set name or path (test split).")
@click.option("--n", "n_samples", type=int, default=4, show_default=True, help="Test samples to analyse.")
@click.option("--layers", default=None, help="Comma-separated layer indices or names (default: all).")
@click.option("--method", type=click.Choice(["auto", "exact", "gram", "svd", "lanczos"]), default="auto",
              show_default=True, help="exact: Gram matrix, SVD where --rtol needs it; lanczos: matrix-free "
              "estimates (top --k values, density); auto: exact where it fits --max-memory, else lanczos.")
@click.option("--k", "k", type=int, default=20, show_default=True,
              help="lanczos: how many of the largest singular values.")
@click.option("--probes", type=int, default=16, show_default=True,
              help="lanczos: probe vectors of the density of J^T J (0: none); error bars ~ 1/sqrt(probes).")
@click.option("--steps", type=int, default=40, show_default=True,
              help="lanczos: Lanczos steps per density probe (fewer: faster, wider Kolmogorov bound).")
@click.option("--max-steps", type=int, default=None,
              help="lanczos: at most this many Golub–Kahan steps for the top k (default: by memory).")
@click.option("--rtol", type=float, default=1e-6, show_default=True,
              help="Relative accuracy asked of the smallest nonzero singular value (auto).")
@click.option("--max-memory", type=float, default=2.0, show_default=True, help="Memory limit in GiB.")
@click.option("--input-shape", default=None, help="Per-sample input shape, e.g. 3,32,32.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for the figures (effect_of_relu.png, decay_over_layers.png).")
@click.option("--scheduler", default=None,
              help="Dask scheduler address, e.g. tcp://HOST:8786: one task per sample on a cluster.")
@model_file_options
@json_option
@table_options
@common_options
def command(model, data, n_samples, layers, method, k, probes, steps, max_steps, rtol, max_memory,
            input_shape, out, scheduler, json_path, csv_path, parquet_path, seed, device, quiet):
    """Full singular values of the Jacobian of every layer output (before and after each
    activation) with respect to the input, at N test samples of DATA: rank, condition
    number over the nonzero part, active units (Behrmann et al. 2018).

    Large inputs (e.g. --arch resnet18_imagenet --input-shape 3,224,224): `auto` goes matrix-free
    where the dense Jacobian does not fit, in float32, on each stage's output and the logits;
    images of another size (the default digits) are resized to the net's input (said so)."""
    import torch

    from ..data import load as load_data
    from ..errors import ConfigError
    from . import spectra
    from ._plots import decay_figure, effect_of_relu_figure, summary_header, summary_rows

    if n_samples < 1:
        raise ConfigError(f"--n must be at least 1, got {n_samples}")
    if max_memory <= 0:
        raise ConfigError(f"--max-memory must be positive, got {max_memory}")
    ds = load_data(data, seed=seed)
    net = load_model(model, ds, input_shape)
    if device != "cpu":
        net = net.copy(device=device)
    chosen = None if not layers else [s.strip() for s in layers.split(",") if s.strip()]
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(ds.test), generator=g)[:n_samples].sort().values
    x = ds.test.x[idx]
    resized = None
    if tuple(x.shape[1:]) != tuple(net.input_shape):
        fitted = _fit_inputs(x, net.input_shape)
        if fitted is not None:
            resized = list(x.shape[1:])
            echo(f"inputs: {ds.spec.name} test samples resized from {'x'.join(map(str, x.shape[1:]))} to "
                 f"{'x'.join(map(str, net.input_shape))} (bilinear)")
            x = fitted
    echo(f"spectra of {len(idx)} test samples of {ds.spec.name}")
    spec = spectra(net, x, layers=chosen, method=method, rtol=rtol, max_bytes=max_memory * 2**30, k=k,
                   probes=probes, steps=steps, max_steps=max_steps, seed=seed, scheduler=scheduler)
    click.echo(_table(summary_header(spec), summary_rows(spec)))
    header, rows = _matfree_rows(spec)
    if rows:
        click.echo("\nmatrix-free estimates (first sample; density of J^T J by stochastic Lanczos "
                   "quadrature):")
        click.echo(_table(header, rows))
    for note in spec.notes:
        echo(f"note: {note}")
    click.echo(f"{spec.samples} samples, {spec.seconds:.1f} s; medians over samples")
    if any(s.estimated for s in spec):
        click.echo("method lanczos: matrix-free ESTIMATES (top-k to --rtol; rank, σ_min and condition "
                   "estimated or bounded: see --json)")
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        for name, fig in (("effect_of_relu", effect_of_relu_figure(spec)), ("decay_over_layers",
                                                                           decay_figure(spec))):
            fig.savefig(out / f"{name}.png", dpi=120, bbox_inches="tight")
        echo(f"figures written to {out}")
    result = spec.to_dict()
    result["sample_indices"] = idx.tolist()
    if resized is not None:
        result["inputs_resized_from"] = resized
    write_results(json_path, result)
    write_tables(spec, csv_path, parquet_path)
