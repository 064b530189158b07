"""The SHADOW experiment: baseline, dropout, SHADOW, dropout+SHADOW with equal gradient steps.

Protocol (the paper's is unknown; every choice is a parameter):
- a validation split (`val_fraction` of the training set, fixed seed) is held out; a label
  budget b takes b random samples of the rest (fixed per budget, the same for every arm);
- every arm runs the same number of gradient steps (`steps`, rounded up to whole epochs of
  the budget); SHADOW adds `ratio` synthetic samples to each batch (so more compute per
  step, not more steps);
- the learning rate is tuned per arm and budget on the validation split (seed 0, final
  epoch error); the chosen rate is then run with `seeds` seeds and evaluated on the test
  split: final test error mean ± std and the test error after every epoch;
- SHADOW's defaults are the theory's (`ShadowAugment`: codes from the first hidden layer,
  ρ = 0.75, ratio 0.25, samples at the data's norm, clipped to its range); every SHADOW run
  logs whether the theory's conditions held on its codes (`ShadowAugment.conditions`);
- the sweeps vary one open choice at a time from the defaults (code layer, ρ, ratio, weight
  of the synthetic loss, warm-up, dropout on the input) at one budget and score each on the
  *validation* split, paired by seed with the baseline; the best setting is then run on the
  test split and compared with the baseline over the same seeds (`ShadowTrainResult.best`).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields

import torch

from .._display import Tabular
from .._frames import frame
from .._progress import progress
from ..errors import ConfigError
from ._paired import paired_comparisons

ARMS = ("baseline", "dropout", "shadow", "dropout+shadow")


@dataclass(frozen=True)
class ShadowTrainConfig:
    """Configuration of `shadow_experiment` (defaults: the reduced CI configuration)."""

    data: str = "digits"
    arch: str = "mlp:256-256"
    budgets: tuple = (100, None)  # None: every training label
    seeds: int = 2
    steps: int = 150
    lrs: tuple = (0.05,)
    batch_size: int = 64
    optimizer: str = "sgd"
    dropout: float = 0.5
    layer: int | str | None = "first"  # "first", "top", "output" or a layer (see ShadowAugment)
    rho: float = 0.75
    ratio: float = 0.25
    scale: str = "data"  # "data": each sample at its real image's norm; "model": the shadow model's
    clamp: str | None = "data"  # clip synthetic inputs to the batch's range ("data") or not (None)
    weight: float | None = None  # None: synthetic samples join the batch mean; w: real + w · synthetic
    warmup: float = 0.0  # fraction of the steps before SHADOW starts
    input_dropout: float = 0.0  # dropout on the input of the net in the SHADOW arms
    val_fraction: float = 0.2
    max_test: int | None = None  # evaluate on a fixed random subset of max_test test samples
    curve_points: int = 40  # test evaluations per run, log-spaced in epochs (the last always)
    arms: tuple = ARMS
    sweep_budget: int | None = None  # budget of the sweeps (default: the first budget)
    sweep_layers: tuple = ()  # layers, or ("all",): every ReLU layer and the output
    sweep_rhos: tuple = ()
    sweep_ratios: tuple = ()
    sweep_weights: tuple = ()
    sweep_warmups: tuple = ()
    sweep_input_dropouts: tuple = ()
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self):
        if self.seeds < 1 or self.steps < 1 or not self.lrs or not self.budgets:
            raise ConfigError("seeds and steps must be >= 1, and lrs and budgets non-empty")
        bad = [a for a in self.arms if a not in ARMS]
        if bad:
            raise ConfigError(f"unknown arm(s) {bad}; choose from {', '.join(ARMS)}")
        if not 0 < self.val_fraction < 1:
            raise ConfigError(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        if self.curve_points < 1:
            raise ConfigError(f"curve_points must be >= 1, got {self.curve_points}")
        if not 0 <= self.warmup < 1 or not 0 <= self.input_dropout < 1:
            raise ConfigError(f"warmup and input_dropout are fractions in [0, 1), got {self.warmup} and "
                              f"{self.input_dropout}")

    def sweep_grid(self) -> list[tuple[str, object]]:
        """The one-at-a-time sweep points `(option, value)`, layers first ("all" expanded later)."""
        named = (("layer", self.sweep_layers), ("rho", self.sweep_rhos), ("ratio", self.sweep_ratios),
                 ("weight", self.sweep_weights), ("warmup", self.sweep_warmups),
                 ("input_dropout", self.sweep_input_dropouts))
        return [(k, v if k == "layer" else float(v)) for k, values in named for v in values]

    @classmethod
    def full(cls, data: str = "digits", **kw) -> ShadowTrainConfig:
        """The full configuration: budgets 100/500/1000/all, 5 seeds, a 3-point lr grid,
        layer and ρ sweeps; the CIFAR CNN for image folders with 3 channels."""
        base = dict(data=data, budgets=(100, 500, 1000, None), seeds=5, steps=3000,
                    lrs=(0.01, 0.03, 0.1), sweep_layers=("all",), sweep_rhos=(0.5, 1.0),
                    sweep_ratios=(0.1, 1.0), sweep_weights=(0.1, 0.5, 1.0), sweep_warmups=(0.5,),
                    sweep_input_dropouts=(0.2,))
        base.update(kw)
        return cls(**base)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ArmResult(Tabular):
    """One arm at one budget: the tuned rate, validation errors per rate, test errors per seed,
    and the mean ± std test error after each epoch of `curve_epochs`."""

    arm: str
    budget: int
    lr: float
    epochs: int
    val_errors: dict
    test_errors: list
    curve_mean: list
    curve_std: list
    seconds: float
    curve_epochs: list = field(default_factory=list)
    conditions: list = field(default_factory=list)  # SHADOW arms: the theory's conditions per seed

    @property
    def mean(self) -> float:
        return statistics.fmean(self.test_errors)

    @property
    def std(self) -> float:
        return statistics.stdev(self.test_errors) if len(self.test_errors) > 1 else 0.0

    def to_dict(self) -> dict:
        return dict(asdict(self), mean=self.mean, std=self.std)

    def frame_row(self) -> dict:
        """`arm`, `budget` (labels), tuned `lr`, `epochs`, `seeds`, `test_error_mean` and `test_error_std`
        over seeds (error rates in [0, 1]), `time_s` (wall time of the arm), `theory_holds` (SHADOW
        arms: the theory's conditions held on every seed's codes; None for the other arms)."""
        return dict(arm=self.arm, budget=self.budget, lr=self.lr, epochs=self.epochs,
                    seeds=len(self.test_errors), test_error_mean=self.mean, test_error_std=self.std,
                    time_s=self.seconds, theory_holds=self.theory_holds)

    @property
    def theory_holds(self) -> bool | None:
        """Whether the theory's conditions held in every seed's run (None: no SHADOW codes)."""
        known = [c["holds"] for c in self.conditions if c]
        return all(known) if known else None

    def to_frame(self):
        """One row (see `frame_row`)."""
        return frame([self.frame_row()])


@dataclass(frozen=True)
class ShadowTrainResult(Tabular):
    config: ShadowTrainConfig
    arms: list[ArmResult]
    sweeps: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    best: dict = field(default_factory=dict)  # the best sweep setting on validation, run on test

    def arm(self, name: str, budget: int) -> ArmResult:
        for a in self.arms:
            if a.arm == name and a.budget == budget:
                return a
        raise KeyError(f"no arm {name} at budget {budget}")

    def comparisons(self, se_multiple: float = 2.0):
        """SHADOW vs baseline and dropout+SHADOW vs dropout per budget, paired by seed."""
        return paired_comparisons(self, se_multiple=se_multiple)

    def to_dict(self) -> dict:
        return dict(config=self.config.to_dict(), arms=[a.to_dict() for a in self.arms],
                    sweeps=self.sweeps, comparisons=[c.to_dict() for c in self.comparisons()],
                    notes=self.notes, best=self.best)

    def to_frame(self):
        """One row per arm and budget (columns: `ArmResult.frame_row`)."""
        return frame([a.frame_row() for a in self.arms])

    def _figures(self):
        from ._experiment_plots import plot_dropout_vs_shadow

        caption = "Test error per epoch at the largest budget: look for the SHADOW arms below the baseline"
        yield plot_dropout_vs_shadow(self), caption

    @classmethod
    def from_dict(cls, d: dict) -> ShadowTrainResult:
        """Read back `to_dict()`: a `--json` file, also one that a stopped run left partial."""
        try:
            cfg = {k: tuple(v) if isinstance(v, list) else v for k, v in d["config"].items()}
            arms = []
            for a in d["arms"]:
                a = {k: v for k, v in a.items() if k not in ("mean", "std")}
                a.setdefault("curve_epochs", list(range(1, len(a["curve_mean"]) + 1)))
                arms.append(ArmResult(**a))
            return cls(ShadowTrainConfig(**cfg), arms, list(d.get("sweeps", [])), list(d.get("notes", [])),
                       dict(d.get("best", {})))
        except (KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(f"not a SHADOW training result ({type(exc).__name__}: {exc}); give the "
                              "--json file of 'reluscope shadow train'") from None


def _subsets(ds, cfg: ShadowTrainConfig):
    from ..data import Dataset, Split

    gen = torch.Generator().manual_seed(cfg.seed)
    perm = torch.randperm(len(ds.train), generator=gen)
    n_val = max(1, int(round(cfg.val_fraction * len(perm))))
    val, pool = perm[:n_val], perm[n_val:]
    val_split = Split(ds.train.x[val], ds.train.y[val])
    if cfg.max_test is not None and cfg.max_test < len(ds.test):
        # A fixed random subset: test splits may be sorted by class (ImageFolder).
        keep = torch.randperm(len(ds.test), generator=gen)[:cfg.max_test]
        ds = Dataset(ds.train, Split(ds.test.x[keep], ds.test.y[keep]), ds.spec)
    budgets = []
    for b in cfg.budgets:
        size = len(pool) if b is None or b == "all" else int(b)
        if not 0 < size <= len(pool):
            raise ConfigError(f"label budget {b} is outside 1..{len(pool)} (training labels after the "
                              "validation split)")
        idx = pool[:size]
        train = Split(ds.train.x[idx], ds.train.y[idx])
        budgets.append((size, Dataset(train, val_split, ds.spec), Dataset(train, ds.test, ds.spec)))
    return budgets


def curve_epochs(epochs: int, points: int) -> list[int]:
    """About `points` epochs in 1..epochs, evenly spaced in log (dense early, where the
    error moves), always with the first and the last.

    >>> curve_epochs(1500, 6)
    [1, 4, 19, 80, 347, 1500]
    >>> curve_epochs(3, 40)
    [1, 2, 3]
    """
    if points >= epochs:
        return list(range(1, epochs + 1))
    if points == 1:
        return [epochs]
    ratio = epochs ** (1 / (points - 1))
    return sorted({1, epochs} | {round(ratio ** k) for k in range(points)})


def _run(cfg: ShadowTrainConfig, data, arm: str, lr: float, seed: int, final_only: bool = False,
         **options) -> tuple[list[int], list[float], dict | None]:
    """Train one model; the epochs evaluated on `data.test`, the test error at each, and the
    theory's conditions on its SHADOW codes (None without SHADOW). `options` override the
    configuration's SHADOW choices (the sweeps: layer, rho, ratio, weight, warmup, input_dropout)."""
    from torch import nn

    from .. import nets
    from ..train import TrainConfig, train
    from ._augment import ShadowAugment

    opt = {k: options.get(k, getattr(cfg, k)) for k in ("layer", "rho", "ratio", "weight", "warmup",
                                                         "input_dropout")}
    steps_per_epoch = math.ceil(len(data.train) / cfg.batch_size)
    epochs = math.ceil(cfg.steps / steps_per_epoch)
    torch.manual_seed(seed)
    model = nets.build(cfg.arch, data.spec.shape, data.spec.classes,
                       dropout=cfg.dropout if "dropout" in arm else 0.0)
    aug = None
    if "shadow" in arm:
        if opt["input_dropout"] > 0:  # the feedforward net sees x ⊙ n, as the shadow model's x~ is
            model = nn.Sequential(nn.Dropout(opt["input_dropout"]), model)
        aug = ShadowAugment(model, layer=opt["layer"], rho=opt["rho"], ratio=opt["ratio"], scale=cfg.scale,
                            clamp=cfg.clamp, weight=opt["weight"], seed=seed, input_shape=data.spec.shape,
                            warmup=int(opt["warmup"] * epochs * steps_per_epoch))
    tc = TrainConfig(epochs=epochs, lr=lr, optimizer=cfg.optimizer, batch_size=cfg.batch_size, seed=seed,
                     device=cfg.device)
    at = [epochs] if final_only else curve_epochs(epochs, cfg.curve_points)
    hist = train(model, data, tc, augment=aug, evaluate_at=set(at)).history
    return at, [1 - hist[e - 1]["test_acc"] for e in at], None if aug is None else aug.conditions()


def _arm(cfg, arm, size, tune_data, test_data) -> ArmResult:
    import time

    start = time.perf_counter()
    val = {}
    if len(cfg.lrs) > 1:
        for lr in cfg.lrs:  # tuning reads the final validation error only
            val[lr] = _run(cfg, tune_data, arm, lr, cfg.seed, final_only=True)[1][-1]
        lr = min(cfg.lrs, key=lambda r: (val[r], cfg.lrs.index(r)))
    else:
        lr = cfg.lrs[0]
    curves, at, conditions = [], [], []
    for s in range(cfg.seeds):
        at, curve, cond = _run(cfg, test_data, arm, lr, cfg.seed + s)
        curves.append(curve)
        conditions.append(cond)
    mean = [statistics.fmean(c[k] for c in curves) for k in range(len(at))]
    std = [statistics.stdev(c[k] for c in curves) if len(curves) > 1 else 0.0 for k in range(len(at))]
    return ArmResult(arm, size, lr, at[-1], {str(k): v for k, v in val.items()}, [c[-1] for c in curves],
                     mean, std, time.perf_counter() - start, list(at),
                     conditions if "shadow" in arm else [])


def shadow_experiment(cfg: ShadowTrainConfig = ShadowTrainConfig(),
                      on_progress: Callable[[ShadowTrainResult], None] | None = None,
                      resume: ShadowTrainResult | None = None) -> ShadowTrainResult:
    """Run the four arms at every label budget (and the optional sweeps).

    `on_progress` receives the partial result after every finished arm and sweep point
    (e.g. to save it: a long run that is stopped keeps what it finished). `resume`, such a
    partial result of the same configuration, supplies the arms and sweep points it has;
    every run is seeded, so the rest continues exactly as the uninterrupted run would.

    Returns:
        A `ShadowTrainResult`; `comparisons()` says per budget whether SHADOW helps.
    """
    from ..data import load as load_data

    ds = load_data(cfg.data, seed=cfg.seed)
    budgets = _subsets(ds, cfg)
    arms = []
    cells = [(arm, b) for b in budgets for arm in cfg.arms]
    notes = [f"{ds!r}; validation split {cfg.val_fraction:.0%} of the training set"]
    sweeps: list[dict] = []
    best: dict = {}

    done_arms, done_sweeps = _resumable(cfg, resume)

    def report() -> None:
        if on_progress is not None:
            on_progress(ShadowTrainResult(cfg, list(arms), list(sweeps), notes, dict(best)))

    for arm, (size, tune, test) in progress(cells, desc="SHADOW arms"):
        arms.append(done_arms.get((arm, size)) or _arm(cfg, arm, size, tune, test))
        report()
    if cfg.sweep_grid():
        from ._choices import sweep_choices

        size, tune, test = budgets[0] if cfg.sweep_budget is None else \
            next(b for b in budgets if b[0] == cfg.sweep_budget)

        def report_sweeps(points: list, found: dict) -> None:
            sweeps[:] = points
            best.update(found)
            report()

        sweep_choices(cfg, arms, size, tune, test, done=done_sweeps,
                      best_done=resume.best if resume is not None else {}, report=report_sweeps)
    return ShadowTrainResult(cfg, arms, sweeps, notes, best)


def _resumable(cfg: ShadowTrainConfig, resume: ShadowTrainResult | None) -> tuple[dict, dict]:
    """The finished arms `{(arm, budget): ArmResult}` and sweep points `{(kind, value): dict}`
    of `resume`, after checking that it ran this configuration (the device may differ)."""
    if resume is None:
        return {}, {}
    # from_dict gives the saved configuration tuples again, so fields compare as they are
    differ = [f.name for f in fields(cfg)
              if f.name != "device" and getattr(cfg, f.name) != getattr(resume.config, f.name)]
    if differ:
        raise ConfigError(f"cannot resume: the saved results ran another configuration (differs in "
                          f"{', '.join(differ)}); give the same options or another --json file")
    return ({(a.arm, a.budget): a for a in resume.arms},
            {(p["kind"], p["value"]): p for p in resume.sweeps})
