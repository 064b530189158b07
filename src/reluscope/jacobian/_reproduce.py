"""Behrmann et al. (2018), stability part: Jacobian spectra of the CIFAR-10 CNN.

Protocol (PAPERS.md §2, experiment 2; details the slides leave open are parameters):

* `nets.cifar_cnn()` trained with `reluscope.train.train` (Adam, lr 1e-3, batch 64) on the
  CIFAR-10 ImageFolder data.
* Full: 32×32 images, all 10,000 training images, 10 epochs, 4 test images, `auto`
  method with rtol 1e-2 (Gram matrix in float64, SVD for the layers whose smallest
  nonzero singular value the Gram matrix cannot give to 1%: the figures are log plots).
* Quick (CI): images average-pooled to 16×16 (the same CNN on a 3×16×16 input), 2,000
  training images, 2 epochs, 2 test images, `auto` method with rtol 1e-3.
* Figures: "effect of ReLU" (before/after the ReLU of the 2nd and 5th convolution, the
  paper's layers 3, 4, 9, 10) and "decay over layers" (all outputs), median over test
  images with min–max bands.
* Lemma: checked on every trained ReLU layer at the first test image, with A the
  Jacobian of the pre-activation and I its inactive units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from .._display import Tabular
from ..report._registry import Claim, Section

QUICK = dict(size=16, train=2000, epochs=2, images=2, method="auto", rtol=1e-3)
FULL = dict(size=32, train=None, epochs=10, images=4, method="auto", rtol=1e-2)
LEMMA_MAX_BYTES = 1.2 * 2**30


@dataclass
class StabilityReproduction(Tabular):
    """What the stability part measured (see the module docstring for the protocol)."""

    config: dict
    training: list[dict]
    spectra: object  # JacobianSpectra
    lemma: list  # LayerLemma
    interlacing: list[dict] = field(default_factory=list)
    skipped_lemma: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return dict(config=self.config, training=self.training, spectra=self.spectra.to_dict(),
                    lemma=[c.to_dict() for c in self.lemma], interlacing=self.interlacing,
                    skipped_lemma=self.skipped_lemma)

    def to_frame(self):
        """The spectra's table: one row per layer output and test image."""
        return self.spectra.to_frame()

    def _figures(self):
        return self.spectra._figures()


def _images(ds, size: int):
    """The data set with images average-pooled to `size` (quick configuration)."""
    from dataclasses import replace

    import torch.nn.functional as F

    if ds.spec.shape[-1] == size:
        return ds
    factor = ds.spec.shape[-1] // size
    return replace(ds, train=replace(ds.train, x=F.avg_pool2d(ds.train.x, factor)),
                   test=replace(ds.test, x=F.avg_pool2d(ds.test.x, factor)),
                   spec=replace(ds.spec, shape=(ds.spec.shape[0], size, size)))


def _subset(split, count: int | None, seed: int):
    if count is None or count >= len(split):
        return split
    idx = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed))[:count]
    return replace(split, x=split.x[idx], y=split.y[idx])


def train_cnn(cifar, quick: bool, seed: int = 0, device: str = "cpu", cache_dir: Path | None = None,
              epochs: int | None = None):
    """Train (or reload from `cache_dir`) the CIFAR CNN; returns (model, history, dataset).

    `cifar` is a data source for `reluscope.data.load` or a loaded `Dataset`.
    """
    from .. import nets
    from ..data import load
    from ..train import TrainConfig, train

    cfg = QUICK if quick else FULL
    epochs = cfg["epochs"] if epochs is None else epochs
    ds = _images(load(cifar, seed=seed) if isinstance(cifar, (str, Path)) else cifar, cfg["size"])
    c, h, _ = ds.train.x.shape[1:]
    torch.manual_seed(seed)
    model = nets.cifar_cnn(c, h, ds.spec.classes)
    name = f"behrmann-cifar-cnn-{'quick' if quick else 'full'}-seed{seed}-epochs{epochs}.pt"
    ckpt = None if cache_dir is None else Path(cache_dir) / name
    cached = _read_cached(ckpt, model) if ckpt is not None and ckpt.exists() else None
    if cached is not None:
        return cached[0].eval(), cached[1], ds
    train_ds = replace(ds, train=_subset(ds.train, cfg["train"], seed))
    res = train(model, train_ds, TrainConfig(epochs=epochs, lr=1e-3, optimizer="adam", seed=seed,
                                             device=device))
    model = res.model.cpu().eval()
    if ckpt is not None:
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"model": model.state_dict(), "history": res.history}, ckpt)
    return model, res.history, ds


def _read_cached(ckpt: Path, model) -> tuple | None:
    """A copy of `model` with the cached weights and the cached history (plain data only:
    `weights_only=True`), or None when the file is not a readable cache of this model."""
    import copy

    try:
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
        loaded = copy.deepcopy(model)
        loaded.load_state_dict(state["model"])
        return loaded, list(state["history"])
    except Exception:  # noqa: BLE001 - a cache that fails its check is retrained, never trusted
        return None


def reproduce(cifar, quick: bool = True, seed: int = 0, device: str = "cpu",
              cache_dir: Path | None = None, epochs: int | None = None,
              images: int | None = None) -> StabilityReproduction:
    """Train the CNN, take all-layer spectra at a few test images, check the lemma.

    `epochs` and `images` override the configuration's values (the rest is fixed).
    """
    from .. import nets
    from . import lemma_checks, spectra
    from ._jacobians import estimate_jacobian_bytes, outputs

    cfg = dict(QUICK if quick else FULL)
    cfg["epochs"] = cfg["epochs"] if epochs is None else epochs
    cfg["images"] = cfg["images"] if images is None else images
    model, history, ds = train_cnn(cifar, quick, seed, device, cache_dir, cfg["epochs"])
    net = nets.load(model, input_shape=tuple(ds.test.x.shape[1:])).copy(dtype=torch.float64)
    idx = torch.randperm(len(ds.test), generator=torch.Generator().manual_seed(seed))[:cfg["images"]]
    x = ds.test.x[idx.sort().values]
    spec = spectra(net, x, method=cfg["method"], rtol=cfg["rtol"])
    lemma, skipped = [], []
    for i in net.relu_layers():
        outs = outputs(net, [i], stages=("pre",))
        if estimate_jacobian_bytes(net, outs) > LEMMA_MAX_BYTES:
            skipped.append(f"layer {outs[0].index} ({net.layers[i].name}): explicit Jacobian too large")
            continue
        lemma += lemma_checks(net, x[:1], layers=[i], seed=seed, max_bytes=LEMMA_MAX_BYTES)
    source = str(cifar) if isinstance(cifar, (str, Path)) else ds.spec.name
    config = {**cfg, "seed": seed, "data": source, "test_indices": idx.sort().values.tolist()}
    return StabilityReproduction(config, history, spec, lemma, _interlacing(spec), skipped)


def _interlacing(spec) -> list[dict]:
    """Removing rows never raises a singular value: σ_i(D A) <= σ_i(A) for every i."""
    rows = []
    by_index = {s.output.index: s for s in spec}
    for s in spec:
        pre = by_index.get(s.output.index - 1)
        if s.output.stage != "post" or pre is None or pre.output.layer != s.output.layer:
            continue
        k = min(pre.singular_values.shape[1], s.singular_values.shape[1])
        a, b = pre.singular_values[:, :k], s.singular_values[:, :k]
        with np.errstate(all="ignore"):
            ratio = np.where(a > 0, b / a, np.where(b > 0, np.inf, 0.0))
        rows.append(dict(pre=pre.output.index, post=s.output.index, max_ratio=float(ratio.max()),
                         rank_pre=int(np.median(pre.rank)), rank_post=int(np.median(s.rank)),
                         active=int(np.median(s.active)) if s.active is not None else None))
    return rows


def _facts(res: StabilityReproduction) -> dict:
    """The numbers the claims and the reading are made of."""
    spec = res.spectra
    conds = [float(np.nanmedian(s.condition)) for s in spec]
    first_conv = [c for s, c in zip(spec, conds) if s.output.stage == "pre"]
    # the paper's "decay over layers" is about the convolutional part (its layers 1-6)
    conv = [(s.output.index, c) for s, c in zip(spec, conds) if len(s.output.shape) == 3]
    nz = np.concatenate([s.singular_values[s.singular_values > 0] for s in spec])
    span = float(nz.max() / nz.min())
    worst = max((r["max_ratio"] for r in res.interlacing), default=0.0)
    depth = np.array([i for i, _ in conv], dtype=float)
    logc = np.log10(np.maximum(np.nan_to_num([c for _, c in conv], nan=1.0), 1))
    rho = float(np.corrcoef(depth, logc)[0, 1]) if len(conv) > 2 and logc.std() > 0 else 0.0
    return dict(conds=conds, first=first_conv[0], conv=conv, nz=nz, span=span, worst=worst, rho=rho)


def _claims(res: StabilityReproduction) -> list[Claim]:
    f = _facts(res)
    conds, conv, nz, span, worst, rho = f["conds"], f["conv"], f["nz"], f["span"], f["worst"], f["rho"]
    held = [c.check.holds for c in res.lemma]
    tight = [c.check.ratio for c in res.lemma if math.isfinite(c.check.ratio)]
    claims = [
        Claim("ReLU removes rows, so the spectrum after a ReLU lies below the one before "
              "(σ_i(D A) <= σ_i(A))",
              f"max σ_i(after)/σ_i(before) over {len(res.interlacing)} ReLUs and all i: {worst:.6f}",
              worst <= 1 + 1e-6),
        Claim("The linearisation's spectrum decays over the convolutional layers (the inverse grows "
              "less stable with depth)",
              f"median condition number from {f['first']:.3g} (layer 1) to a maximum of "
              f"{max(c for _, c in conv):.3g} over {len(conv)} conv outputs; correlation of depth with "
              f"log condition {rho:.2f}; output layer {conds[-1]:.3g}",
              bool(rho > 0.5)),
        Claim("Singular values span about 1e2 down to 1e-4 (six orders of magnitude)",
              f"nonzero singular values span {nz.max():.3g} to {nz.min():.3g} ({math.log10(span):.1f} "
              "orders)", None if span < 1e4 else math.log10(span) >= 4),
        Claim("Lemma: the smallest nonzero singular value of D_I A is at most the c of any removed row "
              "weakly correlated with the kept ones",
              f"{sum(held)}/{len(held)} trained ReLU layers satisfy σ_min <= c; σ_min / bound "
              + (f"from {min(tight):.2g} to {max(tight):.2g}" if tight else "n/a"),
              bool(held) and all(held)),
    ]
    return claims


def section_for(res: StabilityReproduction, quick: bool, out_dir: Path | None = None) -> Section:
    """The reproduction as a report Section with figures, tables and claims."""
    from ..report._html import figure_html, paragraph, table_html
    from ._plots import SUMMARY_HEADER, decay_figure, effect_of_relu_figure, relu_pairs, summary_rows

    spec = res.spectra
    figs = [("effect_of_relu", effect_of_relu_figure(spec),
             f"Effect of ReLU (layers {', '.join(map(str, relu_pairs(spec)))}): spectra before and after "
             f"a ReLU at two depths, median over {spec.samples} test images, band min–max; the paper's "
             "point: the spectrum after a ReLU ends earlier (rows removed) and its small values fall"),
            ("decay_over_layers", decay_figure(spec), "Decay over layers: every output's spectrum, shallow "
             "(dark) to deep (light); the smallest singular values shrink with depth")]
    body = []
    for name, fig, caption in figs:
        if out_dir is not None:
            Path(out_dir).mkdir(parents=True, exist_ok=True)
            fig.savefig(Path(out_dir) / f"behrmann-stability-{name}.png", dpi=120, bbox_inches="tight")
        body.append(figure_html(fig, caption))
    body.append(table_html(SUMMARY_HEADER, summary_rows(spec)))
    lemma_rows = [(c.output.index, c.check.rows, c.check.kept, c.check.rank, c.check.sigma_min,
                   c.check.norm_bound, c.check.c_bound, c.check.projected_bound, c.check.holds)
                  for c in res.lemma]
    body.append(paragraph("Lemma on the trained ReLU layers (first test image): A is the Jacobian of the "
                          "pre-activation, I the inactive units; σ_min is the measured smallest nonzero "
                          "singular value of D_I A, ‖A_K u_k‖ and c the lemma's bounds (min over up to 256 "
                          "removed rows; c is ∞ when no removed row lies in the row space, the projected "
                          "bound then applies)."))
    body.append(table_html(["#", "rows m", "kept M", "rank", "σ_min", "min ‖A_K u_k‖", "c", "projected c",
                            "holds"], lemma_rows))
    if res.skipped_lemma:
        body.append(paragraph("Lemma not checked: " + "; ".join(res.skipped_lemma) + "."))
    acc = res.training[-1]["test_acc"] if res.training else float("nan")
    cfg = res.config
    mode = "quick" if quick else "full"
    body.append(paragraph(f"Configuration: {mode}; images {cfg['size']}×{cfg['size']}, "
                          f"{cfg['epochs']} epochs, test accuracy {acc:.3f}; spectra by '{cfg['method']}' "
                          f"(rtol {cfg['rtol']:g}); see reluscope.jacobian._reproduce for the protocol."))
    f = _facts(res)
    numbers = {"test accuracy": acc, "test images": spec.samples, "layer outputs": len(spec),
               "largest condition number": max(f["conds"]), "seconds for the spectra": round(spec.seconds, 1)}
    below = "sits below" if f["worst"] <= 1 + 1e-6 else "does not always sit below"
    trend = "rises" if f["rho"] > 0.5 else "shows no clear trend"
    reading = (f"Each ReLU deletes the rows of its inactive units; the Jacobian's spectrum after a ReLU "
               f"{below} the one before (largest ratio {f['worst']:.3f}). Over the conv layers the median "
               f"condition number {trend} with depth ({f['first']:.3g} at layer 1, up to "
               f"{max(c for _, c in f['conv']):.3g}; correlation {f['rho']:.2f}), so the further back the "
               "inverse reaches, the less stable it is.")
    return Section("Stability of the inverse: Jacobian spectra of the CIFAR CNN", "".join(body), numbers,
                   reading, json=res.to_dict(), claims=_claims(res))

