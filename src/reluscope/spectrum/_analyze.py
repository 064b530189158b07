"""`analyze`: per-layer random-likeness of a model's weights, trained and at initialisation."""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import nn

from .. import _progress
from .._display import Tabular
from .._frames import frame, log10
from ..errors import CheckpointError, ConfigError, ModelError
from ..nets._layer import Layer
from ..nets._locally import LocallyConnected2d
from ._blas import one_blas_thread
from ._conv import DEFAULT_MAX_DENSE, ConvSpectrum, conv_singular_values
from ._effects import EffectSizes, effect_sizes, entries_vs_initial
from ._mp import DEFAULT_FALSE_ALARM, MPFit, fit_mp
from ._powerlaw import PowerLawFit, fit_power_law
from ._stats import EntryStats, entry_stats
from ._verdict import Verdict, VerdictRules, judge, ks_noise_level

ANALYSED_KINDS = ("linear", "conv1d", "conv2d", "locally_connected")
INIT_COLUMNS = ("verdict", "alpha", "num_spikes", "mp_sigma", "ks_bulk", "log_spectral_norm", "stable_rank",
                "kurtosis", "bulk_fraction", "outlier_energy", "shuffled_spikes", "entries_ks")


@dataclass(frozen=True)
class LayerSpectrum(Tabular):
    """Random-likeness statistics of one layer's weight matrix.

    The matrix is the layer's weight with batch norm folded in, as `rows x cols`: a
    linear layer's `out x in`; a conv kernel reshaped to `c_out x (c_in k k)` (one row
    per filter, the usual convention); a locally connected layer's filters, one row per
    (position, channel).

    Attributes:
        name, kind: the layer (see `reluscope.nets.Layer`).
        shape: `(rows, cols)` of the matrix.
        weight, bias: entry statistics (`bias` is None when the layer has none).
        singular_values: of the matrix, descending.
        mp: Marchenko–Pastur fit, outliers and bulk KS (eigenvalues `s^2 / max(shape)`).
        tail: power-law fit of the eigenvalues of `W^T W` (all of them, as WeightWatcher).
        tail_bulk: the same with the MP outliers removed.
        gaussian_singular_values: of a Gaussian matrix of the same shape and entry RMS.
        gaussian_mp: `mp` for that Gaussian matrix: the sampling-noise reference.
        ks_noise: the KS noise level used by the verdict.
        conv: singular values of the convolution operator (conv layers), else None.
        verdict: the label and its reasons.
        effects: effect sizes (bulk fraction, outlier energy, shuffled baseline, Porter–Thomas,
            kurtosis interval, entries vs the initial law); see `reluscope.spectrum.EffectSizes`.
    """

    name: str
    kind: str
    shape: tuple[int, int]
    weight: EntryStats
    bias: EntryStats | None
    singular_values: np.ndarray
    mp: MPFit
    tail: PowerLawFit
    tail_bulk: PowerLawFit
    gaussian_singular_values: np.ndarray
    gaussian_mp: MPFit
    ks_noise: float
    conv: ConvSpectrum | None
    verdict: Verdict
    weight_values: np.ndarray = field(repr=False, default=None)  # for histograms; not in to_dict
    bias_values: np.ndarray = field(repr=False, default=None)
    effects: EffectSizes | None = None

    @property
    def eigenvalues(self) -> np.ndarray:
        """`s^2 / n` (the MP scale), descending."""
        return self.singular_values**2 / max(self.shape)

    def to_dict(self, max_values: int = 4096) -> dict:
        return dict(
            name=self.name, kind=self.kind, shape=list(self.shape), weight=self.weight.to_dict(),
            bias=None if self.bias is None else self.bias.to_dict(),
            singular_values=self.singular_values[:max_values].tolist(),
            mp=self.mp.to_dict(), tail=self.tail.to_dict(), tail_bulk=self.tail_bulk.to_dict(),
            gaussian_singular_values=self.gaussian_singular_values[:max_values].tolist(),
            gaussian_mp=self.gaussian_mp.to_dict(), ks_noise=self.ks_noise,
            conv=None if self.conv is None else self.conv.to_dict(max_values),
            verdict=self.verdict.to_dict(), effects=None if self.effects is None else self.effects.to_dict())

    def row(self) -> dict:
        """The layer's key numbers (one table row)."""
        return dict(layer=self.name, shape="x".join(map(str, self.shape)), verdict=self.verdict.label,
                    outliers=self.mp.n_outliers, alpha=self.tail.alpha, ks_bulk=self.mp.ks_bulk,
                    ks_noise=self.ks_noise, ks_gaussian=self.gaussian_mp.ks_bulk,
                    kurtosis=self.weight.excess_kurtosis, entries_ks=self.weight.ks,
                    entries_ks_crit=self.weight.ks_critical,
                    operator_norm=(self.conv.norm if self.conv else float(self.singular_values[0])),
                    **({} if self.effects is None else self.effects.columns()))

    def frame_row(self) -> dict:
        """The layer's row of `to_frame()`, with WeightWatcher's column names where the quantity is
        the same (checked against `weightwatcher.py`: `apply_norm_metrics`, `mp_fit`, `fit_powerlaw`).

        With `lam` the eigenvalues of `W^T W` (the squared singular values, unnormalised, as
        WeightWatcher's `evals`) and `N >= M` the sides of W:

        - `layer`, `longname`: the module path (WeightWatcher's `longname`: join the two tables on it;
          its `name` is the class name, e.g. `Linear`).
        - `alpha`, `xmin`, `num_pl_spikes`: power-law fit of the density of lam (Clauset MLE with KS
          `xmin`, as WeightWatcher's default fit); `num_pl_spikes` counts lam >= xmin.
        - `num_spikes`: eigenvalues above the MP edge plus a Tracy–Widom margin (WeightWatcher: above
          `bulk_max + sqrt(TW)` of its own MP fit; same quantity, our threshold is `mp_threshold`).
        - `mp_sigma`: the robustly fitted entry standard deviation of the MP bulk (`sqrt(mp.sigma2)`,
          in the weights' units). `sigma_mp`: WeightWatcher's convention, the MP sigma of the ESD
          rescaled to mean eigenvalue 1, i.e. `mp_sigma / rms(W)` (about 1 for i.i.d. weights).
        - `spectral_norm` = max lam (WeightWatcher's name: the *squared* largest singular value);
          `log_spectral_norm` = log10(max lam); `norm` = sum lam = ||W||_F^2, `log_norm` = log10 of it.
        - `stable_rank` = sum lam / max lam = ||W||_F^2 / ||W||_2^2.
        - `mp_softrank` = MP bulk edge / max eigenvalue.

        Conv layers: WeightWatcher splits a kernel into `k x k` matrices `c_out x c_in` and pools their
        eigenvalues; here the kernel is one `c_out x (c_in k k)` matrix, so conv rows differ.
        """
        lam = self.singular_values**2
        lam_max, total = float(lam[0]), float(lam.sum())
        rms = math.sqrt(total / (self.shape[0] * self.shape[1]))
        mp_sigma = math.sqrt(self.mp.sigma2)
        return dict(
            layer=self.name, longname=self.name, kind=self.kind, rows=self.shape[0], cols=self.shape[1],
            N=max(self.shape), M=min(self.shape), verdict=self.verdict.label, alpha=self.tail.alpha,
            alpha_se=self.tail.alpha_se, xmin=self.tail.xmin, num_pl_spikes=self.tail.n_tail,
            alpha_bulk=self.tail_bulk.alpha, num_spikes=self.mp.n_outliers, mp_sigma=mp_sigma,
            sigma_mp=mp_sigma / rms if rms > 0 else float("nan"), mp_edge=self.mp.edge,
            mp_threshold=self.mp.threshold, ks_bulk=self.mp.ks_bulk, ks_noise=self.ks_noise,
            ks_gaussian=self.gaussian_mp.ks_bulk, spectral_norm=lam_max, log_spectral_norm=log10(lam_max),
            norm=total, log_norm=log10(total), stable_rank=total / lam_max if lam_max > 0 else float("nan"),
            mp_softrank=self.mp.edge / self.eigenvalues[0] if lam_max > 0 else float("nan"),
            operator_norm=(self.conv.norm if self.conv else float(self.singular_values[0])),
            kurtosis=self.weight.excess_kurtosis, entries_ks=self.weight.ks,
            entries_ks_crit=self.weight.ks_critical,
            **({} if self.effects is None else self.effects.columns()))

    def to_frame(self):
        """One row (see `frame_row` for the columns)."""
        return frame([self.frame_row()])

    def _figures(self):
        from ._plots import layer_figure

        caption = f"layer {self.name}: look for spikes beyond the dashed MP edge and a straight tail in (e)"
        yield layer_figure(self), caption


@dataclass(frozen=True)
class SpectrumResult(Tabular):
    """Per-layer results for a model, and for the same architecture at initialisation.

    Attributes:
        layers: one `LayerSpectrum` per analysed layer.
        init: the same for the initial model (matched by layer order), or None.
        skipped: `(layer name, reason)` for layers without a weight matrix to analyse.
        settings: the parameters of the run.
        seconds: wall time.
    """

    layers: tuple[LayerSpectrum, ...]
    init: tuple[LayerSpectrum, ...] | None
    skipped: tuple[tuple[str, str], ...]
    settings: dict
    seconds: float

    def to_dict(self) -> dict:
        return dict(layers=[ls.to_dict() for ls in self.layers],
                    init=None if self.init is None else [ls.to_dict() for ls in self.init],
                    skipped=[dict(layer=n, reason=r) for n, r in self.skipped],
                    settings=self.settings, seconds=self.seconds, table=self.table())

    def table(self) -> list[dict]:
        """One row per layer; with an initial model, its verdict/outliers/alpha alongside."""
        rows = []
        for i, ls in enumerate(self.layers):
            row = ls.row()
            if self.init is not None:
                ini = self.init[i]
                row.update(init_verdict=ini.verdict.label, init_outliers=ini.mp.n_outliers,
                           init_alpha=ini.tail.alpha, init_ks_bulk=ini.mp.ks_bulk,
                           init_kurtosis=ini.weight.excess_kurtosis)
                if ini.effects is not None:
                    row.update(init_bulk_fraction=ini.effects.bulk_fraction,
                               init_outlier_energy=ini.effects.outlier_energy,
                               init_shuffled_spikes=ini.effects.shuffled.n_outliers,
                               init_kurtosis_low=ini.effects.kurtosis.low,
                               init_kurtosis_high=ini.effects.kurtosis.high)
            rows.append(row)
        return rows

    def to_frame(self):
        """One row per layer (columns: `LayerSpectrum.frame_row`, WeightWatcher's names where the
        quantity is the same); with an initial model, its numbers alongside as `init_*`."""
        rows = []
        for i, ls in enumerate(self.layers):
            row = ls.frame_row()
            if self.init is not None:
                ini = self.init[i].frame_row()
                row.update({f"init_{k}": ini.get(k, float("nan")) for k in INIT_COLUMNS})
            rows.append(row)
        return frame(rows)

    def _figures(self):
        from ._plots import summary_figure

        caption = ("Outliers above the MP edge and tail exponent per layer: trained (blue) against initial "
                   "(grey)")
        yield summary_figure(self), caption


def analyze(model_or_net, init_model=None, *, input_shape=None, seed: int = 0, conv_operator: bool = True,
            max_dense: int = DEFAULT_MAX_DENSE, false_alarm: float = DEFAULT_FALSE_ALARM,
            rules: VerdictRules = VerdictRules()) -> SpectrumResult:
    """Test whether each layer's weights look like an i.i.d. Gaussian random matrix.

    Arguments:
        model_or_net: a `torch.nn.Module`, a `reluscope.nets.Graph` or `ReluNet`. A chain
            is analysed layer by layer; any other graph node by node (every affine node
            with a weight, named by its module path); a module that cannot be imported as
            a graph (untraceable, unsupported layers) by reading the weights of its
            Linear, Conv1d/2d, LocallyConnected2d and MultiheadAttention modules.
        init_model: the same architecture at initialisation (module or ReluNet) to
            analyse alongside; `True` re-initialises a copy with `seed` (each module's
            `reset_parameters`, PyTorch's default init); None: trained model only.
        input_shape: per-sample input shape, needed for conv models given as modules.
        seed: seeds the Gaussian reference matrices (and the re-initialisation).
        conv_operator: also compute the singular values of each conv operator.
        max_dense: largest side for the exact dense conv-operator SVD (zero padding).
        false_alarm: per-matrix probability that pure noise shows an outlier.
        rules: verdict thresholds.

    Returns:
        A `SpectrumResult`.

    >>> from reluscope import nets
    >>> _ = torch.manual_seed(0)
    >>> res = analyze(nets.mlp([64, 128, 10]))
    >>> [ls.verdict.label for ls in res.layers]
    ['random-like', 'too small']
    """
    start = time.perf_counter()
    net = _as_net(model_or_net, input_shape)
    init_net = None
    if init_model is True:
        init_net = _as_net(reinitialise(net.model, seed), net.input_shape)
    elif init_model is not None and init_model is not False:
        init_net = _as_net(init_model, net.input_shape)
        if _signature(init_net) != _signature(net):
            raise ModelError("the initial model's layers differ from the model's; pass the same "
                             "architecture at initialisation")
    kwargs = dict(seed=seed, conv_operator=conv_operator, max_dense=max_dense, false_alarm=false_alarm,
                  rules=rules)
    layers, skipped = _analyze_net(net, "spectrum", **kwargs)
    init = None if init_net is None else tuple(_analyze_net(init_net, "spectrum (init)", **kwargs)[0])
    if init is not None:
        layers = [_with_vs_initial(ls, ini) for ls, ini in zip(layers, init)]
    settings = dict(seed=seed, conv_operator=conv_operator, max_dense=max_dense, false_alarm=false_alarm,
                    rules=rules.__dict__, init=("re-initialised" if init_model is True else
                                                "given" if init_net is not None else "none"))
    return SpectrumResult(tuple(layers), init, tuple(skipped), settings, time.perf_counter() - start)


def analyze_matrix(w, name: str = "matrix", bias=None, seed: int = 0,
                   false_alarm: float = DEFAULT_FALSE_ALARM, rules: VerdictRules = VerdictRules(),
                   kind: str = "linear", conv: ConvSpectrum | None = None) -> LayerSpectrum:
    """Analyse one 2-D weight matrix (array or tensor); see `LayerSpectrum`.

    >>> w = np.random.default_rng(0).standard_normal((300, 100))
    >>> analyze_matrix(w).verdict.label
    'random-like'
    """
    w = _to_numpy(w)
    if w.ndim != 2 or min(w.shape) < 1:
        raise ConfigError(f"expected a 2-D matrix, got shape {w.shape}")
    if not np.all(np.isfinite(w)):
        raise ModelError(f"the weights of '{name}' contain NaN or Inf; check the model file")
    n = max(w.shape)
    sv = _singular_values(w)
    eig = sv**2 / n
    mp = fit_mp(eig, n, false_alarm)
    tail = fit_power_law(sv**2)
    tail_bulk = fit_power_law(sv[mp.n_outliers:] ** 2)
    rms = float(np.sqrt(np.mean(w**2)))
    gen = np.random.default_rng(seed)
    g = gen.standard_normal(w.shape) * rms
    gsv = _singular_values(g)
    gmp = fit_mp(gsv**2 / n, n, false_alarm)
    stats = entry_stats(w)
    noise = ks_noise_level(mp.p, rules.ks_factor)
    effects = effect_sizes(w, sv, mp, noise, kind=kind, seed=seed, false_alarm=false_alarm)
    bstats = None if bias is None else entry_stats(_to_numpy(bias))
    return LayerSpectrum(name=name, kind=kind, shape=tuple(int(s) for s in w.shape), weight=stats,
                         bias=bstats, singular_values=sv, mp=mp, tail=tail, tail_bulk=tail_bulk,
                         gaussian_singular_values=gsv, gaussian_mp=gmp,
                         ks_noise=noise, conv=conv, verdict=judge(mp, tail, stats, rules),
                         weight_values=w.ravel(),
                         bias_values=None if bias is None else _to_numpy(bias).ravel(),
                         effects=effects)


def _with_vs_initial(ls: LayerSpectrum, init: LayerSpectrum) -> LayerSpectrum:
    """`ls` with its entries compared with those of the same layer at initialisation."""
    if ls.effects is None or ls.weight_values is None or init.weight_values is None:
        return ls
    vs = entries_vs_initial(ls.weight_values, init.weight_values)
    return replace(ls, effects=replace(ls.effects, vs_initial=vs))


def weight_matrix(layer) -> np.ndarray:
    """The 2-D matrix of a layer (see `LayerSpectrum`), float64."""
    w = layer.weight.detach().to(torch.float64).cpu()
    if layer.kind == "linear":
        return w.numpy()
    if layer.kind in ("conv1d", "conv2d"):
        return w.reshape(w.shape[0], -1).numpy()
    if layer.kind == "locally_connected":  # (oh, ow, out, in k k)
        return w.reshape(-1, w.shape[-1]).numpy()
    raise ConfigError(f"layer kind {layer.kind} has no weight matrix")


def reinitialise(model: nn.Module, seed: int = 0) -> nn.Module:
    """A copy of `model` with every module's `reset_parameters()` called under `seed`."""
    fresh = copy.deepcopy(model)
    torch.manual_seed(seed)
    for m in fresh.modules():
        if hasattr(m, "reset_parameters") and m is not fresh:
            m.reset_parameters()
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
    return fresh


def _analyze_net(net, desc: str, seed, conv_operator, max_dense, false_alarm, rules):
    targets, skipped = _targets(net)
    layers = []
    for i, name, layer in _progress.progress(targets, desc=desc):
        conv = None
        if conv_operator and layer.kind == "conv2d" and isinstance(layer, Layer):
            conv = conv_singular_values(layer, max_dense=max_dense)
        layers.append(analyze_matrix(weight_matrix(layer), name, _bias(layer), seed=seed + 1000 * i,
                                     false_alarm=false_alarm, rules=rules, kind=layer.kind, conv=conv))
    if not layers:
        raise ModelError("the model has no linear, conv1d, conv2d or locally connected layer to analyse")
    return layers, skipped


@dataclass(frozen=True)
class _RawWeight:
    """A weight read straight from a module (models that do not import as a graph)."""

    kind: str
    weight: torch.Tensor
    bias: torch.Tensor | None


class _ModuleWeights:
    """The weights of a module that `reluscope.nets.load` cannot import."""

    def __init__(self, model: nn.Module, input_shape):
        self.model = model
        self.input_shape = input_shape
        self.targets = []
        for name, m in model.named_modules():
            if isinstance(m, nn.Linear):
                self.targets.append((name, _RawWeight("linear", m.weight, m.bias)))
            elif isinstance(m, nn.Conv1d):
                self.targets.append((name, _RawWeight("conv1d", m.weight, m.bias)))
            elif isinstance(m, nn.Conv2d):
                self.targets.append((name, _RawWeight("conv2d", m.weight, m.bias)))
            elif isinstance(m, LocallyConnected2d):
                self.targets.append((name, _RawWeight("locally_connected", m.weight, m.bias)))
            elif isinstance(m, nn.MultiheadAttention):
                prefix = f"{name}." if name else ""
                if m.in_proj_weight is not None:
                    self.targets.append((prefix + "in_proj", _RawWeight("linear", m.in_proj_weight,
                                                                        m.in_proj_bias)))
                else:
                    for j, part in enumerate("qkv"):
                        bias = None if m.in_proj_bias is None else \
                            m.in_proj_bias[j * m.embed_dim:(j + 1) * m.embed_dim]
                        self.targets.append((f"{prefix}{part}_proj", _RawWeight(
                            "linear", getattr(m, f"{part}_proj_weight"), bias)))
            # out_proj is an nn.Linear submodule: found on its own


def _targets(net) -> tuple[list[tuple[int, str, object]], list[tuple[str, str]]]:
    """`(seed index, name, Layer or _RawWeight)` of each matrix to analyse, and the skipped."""
    targets, skipped = [], []
    if isinstance(net, _ModuleWeights):
        return [(i, name, w) for i, (name, w) in enumerate(net.targets)], skipped
    if net.is_chain:
        named = [(layer.name, layer) for layer in net.layers]
    else:
        named = [(node.name, node.layer) for node in net.nodes if node.op == "affine"]
    for i, (name, layer) in enumerate(named):
        if layer.kind not in ANALYSED_KINDS or not layer.has_weight:
            skipped.append((name, f"{layer.kind} has no learned weight matrix"))
            continue
        targets.append((i, name, layer))
    return targets, skipped


def _bias(layer):
    if isinstance(layer, _RawWeight):
        return layer.bias
    if getattr(layer.module, "bias", None) is not None or layer.bn_after is not None:
        return layer.bias
    return None


def _signature(net) -> list[tuple[str, str, tuple[int, ...]]]:
    return [(layer.kind, tuple(layer.weight.shape)) for _, _, layer in _targets(net)[0]]


def _as_net(obj, input_shape):
    from .. import nets
    from ..nets import Graph

    if isinstance(obj, Graph):
        return obj
    if isinstance(obj, nn.Module):
        try:
            return nets.load(obj, input_shape=input_shape)
        except ModelError as err:
            if isinstance(err, CheckpointError):
                raise
            fallback = _ModuleWeights(obj, input_shape)
            if not fallback.targets:
                raise
            _check_finite(fallback)
            return fallback
    raise ConfigError(f"expected a torch.nn.Module or a reluscope.nets.Graph, got {type(obj).__name__}")


def _check_finite(net: _ModuleWeights) -> None:
    for name, w in net.targets:
        if not torch.isfinite(w.weight).all():
            raise ModelError(f"the weights of '{name}' contain NaN or Inf; check the model file")


def _singular_values(w: np.ndarray) -> np.ndarray:
    """Singular values, descending, via the Gram matrix on the smaller side (float64).

    Gram eigenvalues lose relative accuracy only for singular values below ~1e-8 of the
    largest, far below anything the MP statistics resolve.
    """
    with one_blas_thread():
        gram = w.T @ w if w.shape[0] >= w.shape[1] else w @ w.T
        ev = np.linalg.eigvalsh(gram)
    return np.sqrt(np.clip(ev, 0.0, None))[::-1].copy()


def _to_numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().to(torch.float64).cpu().numpy()
    return np.asarray(x, dtype=np.float64)


