"""Report section "Teacher and student" and `reproduce(quick)` for `reluscope reproduce tian`.

The section does not use the report's model: it runs its own synthetic teachers (the
theory is about a student learning a known teacher), in quick mode a small FC run and the
theorem residual table.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .._display import Tabular
from .._frames import frame
from .._io import to_jsonable
from ..report._html import figure_html, paragraph, table_html
from ..report._registry import Claim, ReportContext, Section, section
from ._fc import FCConfig, FCResult, run_fc
from ._theorems import TheoremCheck, check_all

# The author's code on CPU, these defaults, 10 epochs (issue 8), lowest layer first. Rerun here (issue 17,
# first student, metric of its final summary): 0.993 / 0.789 / 0.675 / 0.798 with --seed 0 and
# 0.995 / 0.837 / 0.814 / 0.787 with its default --seed 1: the figures vary with the teacher's draw.
AUTHOR_10_EPOCHS = (0.9996, 0.92, 0.84, 0.74)


@dataclass(frozen=True)
class Reproduction(Tabular):
    """FC best-match correlations next to the author's, and the theorem checks."""

    fc: FCResult
    theorems: list
    reference: tuple = AUTHOR_10_EPOCHS
    notes: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return to_jsonable({"fc": self.fc.to_dict(), "theorems": [t.to_dict() for t in self.theorems],
                            "reference_mean_best": self.reference, "notes": self.notes})

    def to_frame(self):
        """The FC table (`FCResult.to_frame`) with the author's `reference_mean_best` alongside; the
        theorem checks are `reluscope.to_frame(self.theorems)`."""
        rows = self.fc.to_frame().to_dict("records")
        ref = list(self.reference)
        return frame([dict(r, reference_mean_best=ref[i] if i < len(ref) else float("nan"))
                      for i, r in enumerate(rows)])

    def _figures(self):
        return self.fc._figures()


def quick_fc_config(seed: int = 0) -> FCConfig:
    """A reduced FC run (about 15 s on 2 cores): 30k samples, 4 epochs, SGD lr 0.02 with
    momentum 0.9 (without momentum, such a short run stays near 0.6 at every layer)."""
    return FCConfig(n_train=30_000, epochs=4, lr=0.02, momentum=0.9, seed=seed)


def reproduce(quick: bool = True, seed: int = 0) -> Reproduction:
    """The FC setting of the author's code (10 epochs, 100k samples; reduced when `quick`) and
    every theorem check.

    Returns:
        A `Reproduction`; `fc.mean_best` is to be read against `reference`.
    """
    cfg = quick_fc_config(seed) if quick else FCConfig(seed=seed)
    notes = ["reduced run: compare with the reference only in a full run"] if quick else []
    return Reproduction(run_fc(cfg), check_all(seed=seed, quick=quick), notes=notes)


def theorem_table(checks: list[TheoremCheck]) -> str:
    return table_html(["check", "input", "residual", "per level", "claim confirmed"],
                      [(c.name, c.case, c.residual, ", ".join(f"{v:.1e}" for v in c.per_level), c.holds)
                       for c in checks])


def fc_claims(fc: FCResult, reference: tuple, quick: bool) -> list[Claim]:
    """The author's FC numbers next to ours (reached: at least the author's figure less 0.01, judged in
    full runs of the author's protocol only); the held-out figure is shown beside each."""
    best, held = list(fc.mean_best), list(fc.mean_best_heldout)
    claims = [Claim("The lowest student layer mimics the teacher (best-match correlation ≈ 0.999)",
                    f"mean best-match {best[0]:.4f} (held-out {held[0]:.4f})", best[0] >= 0.95)]
    judged = not quick and fc.config.protocol == "author"
    for i, (ours, h, ref) in enumerate(zip(best, held, reference)):
        claims.append(Claim(f"Author's code, 10 epochs: layer {i + 1} mean best-match {ref}",
                            f"{ours:.4f}, held-out {h:.4f}" + (" (reduced run)" if quick else ""),
                            ours >= ref - 0.01 if judged else None))
    return claims


def theorem_claims(checks: list[TheoremCheck]) -> list[Claim]:
    """Each theorem must hold where its conditions hold and fail where they are broken."""
    out = []
    for met, broken in zip(checks[::2], checks[1::2]):
        out.append(Claim(f"{met.name} holds ({met.case})", f"residual {met.residual:.2e}", met.holds))
        out.append(Claim(f"{broken.name} check rejects a broken input ({broken.case})",
                         f"residual {broken.residual:.2e}", not broken.holds))
    return out


def teacher_section(rep: Reproduction, quick: bool) -> Section:
    """The section shown in the report and in `reluscope reproduce tian`."""
    from ._plots import plot_fc

    fc = rep.fc
    rows = [(f"layer {i + 1}", fc.config.widths[i], m, ref, h, m - h, f9, f95)
            for i, (m, ref, h, f9, f95) in enumerate(zip(fc.mean_best, rep.reference, fc.mean_best_heldout,
                                                         fc.matched(0.9), fc.matched(0.95)))]
    c = fc.config
    n = min(c.n_eval, c.batch_size * c.metric_batches) if c.protocol == "author" else c.n_eval
    how = ("the author's protocol: teacher rows from {-0.5, -0.25, 0, 0.25, 0.5}, distinct, biases "
           "uniform on [-0.5, 0.5], each row and bias divided by the row's norm; best matches on the "
           f"first {c.metric_batches} batches ({n} samples) of the evaluation set, as the author's code "
           "computes them" if c.protocol == "author" else
           f"the centred protocol: every teacher node active half the time; best matches on {n} inputs")
    body = (paragraph(f"Fully connected teacher {list(c.widths)} on Gaussian input (d={c.d}, "
                      f"std {c.data_std}), student {c.multi}x wider, MSE, SGD lr {c.lr}, "
                      f"{c.n_train} samples, {c.epochs} epochs; {how}. The maximum over "
                      f"{c.multi}x as many student nodes of correlations estimated from few samples is "
                      f"biased upwards, so the same statistic on {c.n_heldout} fresh inputs (held-out) "
                      "and the difference (small-sample bias) stand beside it.")
            + table_html(["layer", "teacher nodes", "mean best corr", "author (10 epochs)",
                          "held-out mean best", "small-sample bias", "matched ≥0.9", "matched ≥0.95"], rows)
            + figure_html(plot_fc(fc), "Best-match correlation of every teacher node (left, sorted) and its "
                          "mean per epoch (right), by layer: values near 1 (dotted 0.9, dashed 0.95) mean "
                          "a student node mimics that teacher node; thin dashed lines: the same on the "
                          "held-out inputs.")
            + paragraph("Theorem checks on small teachers whose inputs are all enumerated (exact "
                        "expectations). Each runs on an input meeting its conditions and on one "
                        "breaking them; the broken case must not be confirmed.")
            + theorem_table(rep.theorems))
    met, broken = rep.theorems[::2], rep.theorems[1::2]
    best = list(fc.mean_best)
    numbers = {"FC mean best corr (layers 1→4)": " / ".join(f"{v:.3f}" for v in best),
               "FC held-out mean best corr": " / ".join(f"{v:.3f}" for v in fc.mean_best_heldout),
               "theorem checks confirmed (conditions met)": f"{sum(t.holds for t in met)}/{len(met)}",
               "broken inputs rejected": f"{sum(not t.holds for t in broken)}/{len(broken)}"}
    trend = "weaken" if all(a >= b for a, b in zip(best, best[1:])) else "do not weaken monotonically"
    reading = (f"The student's best matches to the teacher's nodes go from {best[0]:.3f} at the lowest "
               f"layer to {best[-1]:.3f} at the top: they {trend} with depth "
               f"(held-out: {fc.mean_best_heldout[0]:.3f} to {fc.mean_best_heldout[-1]:.3f}). "
               f"{sum(t.holds for t in met)} of {len(met)} theorem checks hold where their conditions "
               f"hold, and {sum(not t.holds for t in broken)} of {len(broken)} fail where they are broken.")
    if quick:
        reading += " Quick mode: a reduced FC run, not comparable with the author's 10-epoch numbers."
    return Section("Teacher and student", body, numbers, reading, json=rep.to_dict(),
                   claims=fc_claims(fc, rep.reference, quick) + theorem_claims(rep.theorems))


@section("teacher", "Teacher and student", order=60)
def build(ctx: ReportContext) -> Section:
    return teacher_section(reproduce(quick=ctx.quick, seed=ctx.seed), ctx.quick)
