"""Numerical checks of Tian's theorems on small teachers whose inputs can all be enumerated.

Every expectation is exact: the inputs are all `m0^L` leaf configurations, equally likely,
so conditional means are group means, and every check reports a relative residual that
is at round-off level where the theorem's conditions hold and grows when they are broken.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from .._display import Tabular
from .._io import to_jsonable
from ..errors import ConfigError
from ._student import LCStudent, few_threads
from ._teacher import LCTeacher, make_teacher
from ._tree import build_tree

TOL = 1e-9  # float64 round-off, relative


@dataclass(frozen=True)
class TheoremCheck(Tabular):
    """One theorem checked on one input.

    Attributes:
        name: e.g. "Theorem 2 (forward)".
        case: what input was used (conditions met, or which one is broken).
        residual: the largest relative residual (or the quantity the theorem bounds).
        per_level: residual of every level, lowest first.
        tolerance: `holds` is `residual <= tolerance` (or the check's own criterion).
        holds: whether the theorem's claim is confirmed on this input.
        details: other numbers of the check.
    """

    name: str
    case: str
    residual: float
    tolerance: float
    holds: bool
    per_level: list = field(default_factory=list)
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return to_jsonable(self.__dict__)


@dataclass(frozen=True, eq=False)
class Setup:
    """A teacher, a random student over its fields, and every input with its variables.

    `x` is `(N, C, H, W)` float64 over all leaf configurations (equally likely), `zs[l]`
    the `(N, fields_l)` variables of level l, `student` a float64 `LCStudent`.
    """

    teacher: LCTeacher
    student: LCStudent
    x: torch.Tensor
    zs: list


def make_setup(kind: str = "bijective", length: int = 8, depth: int = 3, kernel: int = 2, stride=None,
               m=2, widths=(6, 6), seed: int = 0) -> Setup:
    """A small enumerable teacher (1-D input of `length` leaves) with a random student.

    Arguments:
        kind: teacher kind ("bijective": lossless, the conditions of Theorems 2 and 6 hold;
            "table": lossy lookup tables, they do not).
        length: the field tree's input length (`build_tree`).
        depth: the field tree's depth.
        kernel: the field tree's window.
        stride: the field tree's window step.
        m: leaf alphabet (bijective) or values per level (`make_teacher`).
        widths: student nodes per field of levels 1..depth-1.
        seed: seed of teacher and student.
    """
    tree = build_tree(length, depth, kernel, stride)
    teacher = make_teacher(tree, m, kind, seed=seed)
    leaves = teacher.enumerate_leaves()
    student = LCStudent(tree, teacher.channels, widths, teacher.classes, seed=seed + 1).double()
    with torch.no_grad():  # random biases can kill whole fields; centre them so gates vary
        for layer in student.levels:
            layer.bias.mul_(0.1)
    return Setup(teacher, student, teacher.inputs(leaves), teacher.evaluate(leaves))


def _group_mean(values: torch.Tensor, z: torch.Tensor, m: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Means of `values (N, D)` over samples with z = a, `(m, D)`, and the counts `(m,)`."""
    sums = torch.zeros(m, values.shape[1], dtype=values.dtype).index_add_(0, z, values)
    counts = torch.bincount(z, minlength=m).to(values.dtype)
    return sums / counts.clamp_min(1)[:, None], counts


def _cond(za: torch.Tensor, zb: torch.Tensor, ma: int, mb: int) -> torch.Tensor:
    """P(z_b | z_a) as an `(ma, mb)` matrix from the (equally likely) samples."""
    joint = torch.zeros(ma * mb, dtype=torch.float64).index_add_(
        0, za * mb + zb, torch.ones_like(za, dtype=torch.float64)).view(ma, mb)
    return joint / joint.sum(1, keepdim=True).clamp_min(1)


def _rel(lhs: torch.Tensor, rhs: torch.Tensor) -> float:
    return float((lhs - rhs).norm() / lhs.norm().clamp_min(1e-300))


def _trace(setup: Setup, need_grad: bool = True):
    """Pre-activations, activations, gates and per-sample gradients g = dL/dpre of every level."""
    s = setup.student
    pre, post = s.trace(setup.x)
    if need_grad:
        for p in pre:
            p.retain_grad()
        F.cross_entropy(post[-1].flatten(1), setup.zs[-1][:, 0], reduction="sum").backward()
    top = len(pre) - 1
    flat = [p.detach().flatten(2) for p in pre]
    acts = [p.detach().flatten(2) for p in post]
    gates = [(f > 0).double() if lev < top or s.top_activation else torch.ones_like(f)
             for lev, f in enumerate(flat)]
    grads = [p.grad.flatten(2) if need_grad else None for p in pre]
    s.zero_grad(set_to_none=True)
    return flat, acts, gates, grads


def _inputs_per_field(setup: Setup) -> torch.Tensor:
    return setup.x.flatten(2)  # (N, C, positions)


def _level_means(setup: Setup, acts) -> list[list[torch.Tensor]]:
    """F[l][α] = E[f(x) | z_α], `(m_l, n_l)`, for l = 0 (inputs) .. depth."""
    t = setup.teacher
    out = [[_group_mean(_inputs_per_field(setup)[:, :, p], setup.zs[0][:, p], t.m[0])[0]
            for p in range(t.tree.n_fields(0))]]
    for lev in range(1, t.tree.depth + 1):
        out.append([_group_mean(acts[lev - 1][:, :, a], setup.zs[lev][:, a], t.m[lev])[0]
                    for a in range(t.tree.n_fields(lev))])
    return out


def _present(setup: Setup, lev: int, a: int) -> torch.Tensor:
    return torch.bincount(setup.zs[lev][:, a], minlength=setup.teacher.m[lev]) > 0


def _children_term(setup: Setup, means, lev: int, a: int) -> torch.Tensor:
    """Σ_β P_αβ F_β W_βα + b_α for field `a` at level `lev`."""
    t, s = setup.teacher, setup.student
    acc = s.field_bias(lev, a).detach().expand(t.m[lev], -1).clone()
    for slot, b in enumerate(t.tree.children(lev, a)):
        P = _cond(setup.zs[lev][:, a], setup.zs[lev - 1][:, b], t.m[lev], t.m[lev - 1])
        acc += P @ means[lev - 1][b] @ s.child_weight(lev, a, slot).detach()
    return acc


def check_reformulation_forward(setup: Setup) -> TheoremCheck:
    """Theorem 2, forward: `f_j(z_α) = f'_j(z_α) Σ_k w_jk E_{z_β|z_α}[f_k(z_β)]` at every level.

    LHS and the gates `f'_j(z_α) = E[1(pre_j > 0) | z_α]` come from the enumerated inputs.
    Exact when P(x_α | z_α) is a point mass (`kind="bijective"`).
    """
    with torch.no_grad():
        pre, acts, gates, _ = _trace(setup, need_grad=False)
    means = _level_means(setup, acts)
    t, per_level = setup.teacher, []
    for lev in range(1, t.tree.depth + 1):
        lhs, rhs = [], []
        for a in range(t.tree.n_fields(lev)):
            keep = _present(setup, lev, a)
            D = _group_mean(gates[lev - 1][:, :, a], setup.zs[lev][:, a], t.m[lev])[0]
            lhs.append(means[lev][a][keep])
            rhs.append((D * _children_term(setup, means, lev, a))[keep])
        per_level.append(_rel(torch.cat(lhs), torch.cat(rhs)))
    return _result("Theorem 2 (forward)", setup, per_level)


def check_reformulation_backward(setup: Setup) -> TheoremCheck:
    """Theorem 2, backward: `g_k(z_β) = f'_k(z_β) Σ_{j∈pa(k)} w_jk E_{z_α|z_β}[g_j(z_α)]`.

    `g` is the per-sample gradient of the cross-entropy on the label with respect to the
    pre-activations, from autograd; checked at levels 1..depth-1.
    """
    _, _, gates, grads = _trace(setup)
    t, s, per_level = setup.teacher, setup.student, []
    G = [None] + [[_group_mean(grads[lev - 1][:, :, a], setup.zs[lev][:, a], t.m[lev])[0]
                   for a in range(t.tree.n_fields(lev))] for lev in range(1, t.tree.depth + 1)]
    for lev in range(1, t.tree.depth):
        lhs, rhs = [], []
        for b in range(t.tree.n_fields(lev)):
            keep = _present(setup, lev, b)
            D = _group_mean(gates[lev - 1][:, :, b], setup.zs[lev][:, b], t.m[lev])[0]
            acc = torch.zeros_like(G[lev][b])
            for a in t.tree.parents(lev, b):
                slot = t.tree.children(lev + 1, a).index(b)
                P = _cond(setup.zs[lev][:, b], setup.zs[lev + 1][:, a], t.m[lev], t.m[lev + 1])
                acc += P @ G[lev + 1][a] @ s.child_weight(lev + 1, a, slot).detach().T
            lhs.append(G[lev][b][keep])
            rhs.append((D * acc)[keep])
        per_level.append(_rel(torch.cat(lhs), torch.cat(rhs)))
    return _result("Theorem 2 (backward)", setup, per_level)


def check_matrix_form(setup: Setup) -> TheoremCheck:
    """Matrix form `F_α = D_α ∘ Σ_β P_αβ F_β W_βα`, run from the leaves with the teacher's P only.

    F_leaf is the input embedding, each D_α the gate of the recursion's own pre-activation;
    the result is compared with E[f(x) | z_α] over the enumerated inputs. Exact when every
    P(x_α | z_α) is a point mass; otherwise the gates average and the recursion drifts.
    """
    t, s = setup.teacher, setup.student
    with torch.no_grad():
        _, acts, _, _ = _trace(setup, need_grad=False)
    empirical = _level_means(setup, acts)
    rec = [[t.embed.clone() for _ in range(t.tree.n_fields(0))]]
    per_level = []
    with torch.no_grad():
        for lev in range(1, t.tree.depth + 1):
            top = lev == t.tree.depth
            fields, lhs, rhs = [], [], []
            for a in range(t.tree.n_fields(lev)):
                pre = _children_term(setup, rec, lev, a)
                fa = torch.relu(pre) if (not top or s.top_activation) else pre
                fields.append(fa)
                keep = _present(setup, lev, a)
                lhs.append(empirical[lev][a][keep])
                rhs.append(fa[keep])
            rec.append(fields)
            per_level.append(_rel(torch.cat(lhs), torch.cat(rhs)))
    return _result("Matrix form", setup, per_level)


def _codes(leaves: torch.Tensor, positions: list[int], m0: int) -> torch.Tensor:
    radix = m0 ** torch.arange(len(positions))
    return (leaves[:, positions] * radix).sum(1)


def _per_sample_mean(values: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
    _, inv = torch.unique(groups, return_inverse=True)
    means, _ = _group_mean(values, inv, int(inv.max()) + 1)
    return means[inv]


def check_marginal_recursion(setup: Setup, pairs: str = "children") -> TheoremCheck:
    """Theorem 1: `g_j(x_k) = E_{x_{j,-k}|x_k}[g_j(x_j)]`, marginalising autograd's g_j(x).

    For every node j of field α and every child field β (the k's input x_k is β's
    receptive field, part of α's), both sides are computed by exact group means.
    `pairs="non-children"` pairs α with fields of the level below whose inputs are not in
    α's field: the recursion then has no reason to hold (a control that must fail).
    """
    if pairs not in ("children", "non-children"):
        raise ConfigError(f"pairs must be 'children' or 'non-children', got '{pairs}'")
    _, _, _, grads = _trace(setup)
    t, leaves, per_level = setup.teacher, setup.zs[0], []
    for lev in range(1, t.tree.depth):
        lhs, rhs = [], []
        for a in range(t.tree.n_fields(lev)):
            own = set(t.tree.leaves(lev, a))
            below = range(t.tree.n_fields(lev - 1))
            ks = (t.tree.children(lev, a) if pairs == "children"
                  else [b for b in below if not set(t.tree.leaves(lev - 1, b)) <= own])
            g = grads[lev - 1][:, :, a]  # (N, n)
            gj = _per_sample_mean(g, _codes(leaves, sorted(own), t.m[0]))
            for b in ks:
                xk = _codes(leaves, t.tree.leaves(lev - 1, b), t.m[0])
                lhs.append(_per_sample_mean(g, xk))
                rhs.append(_per_sample_mean(gj, xk))
        if lhs:
            per_level.append(_rel(torch.cat(lhs), torch.cat(rhs)))
    if not per_level:
        raise ConfigError("no field pairs to check; use a deeper tree (depth >= 3) with several fields")
    return _result("Theorem 1", setup, per_level, case=f"{setup.teacher.kind} teacher, pairs: {pairs}")


def _result(name: str, setup: Setup, per_level: list[float], case: str | None = None,
            tol: float = TOL) -> TheoremCheck:
    residual = max(per_level)
    case = case or f"{setup.teacher.kind} teacher (m={list(setup.teacher.m)})"
    return TheoremCheck(name, case, residual, tol, residual <= tol, per_level)


def check_batchnorm_projection(f: torch.Tensor, g: torch.Tensor, c1: float = 1.5, c0: float = 0.3,
                               eps: float = 0.0, bn=None) -> TheoremCheck:
    """Theorem 5: the backward map of batch norm is `(c1/σ) P⊥_{f,1}`, against autograd.

    `P⊥_{f,1}` removes from g its components along 1 and along f̂ = f - mean(f) (inner
    product `<a,b> = mean(a b)`), σ is the biased std of f. Autograd differentiates `bn`
    (default `F.batch_norm` in training mode, weight c1, bias c0, `eps`).

    Arguments:
        f: `(N,)` or `(N, channels)` activations (channels apart).
        g: upstream gradients, shaped like `f`.
        c1: batch norm's scale.
        c0: batch norm's shift.
        eps: batch norm's epsilon (the projection is exact at 0; torch needs eps > 0, so 0
            runs as 1e-300, negligible next to any variance in float64).
        bn: a callable `bn(f) -> y` to differentiate instead of the default.
    """
    f = f.double().reshape(f.shape[0], -1)
    g = g.double().reshape(f.shape)
    if f.shape[0] < 2:
        raise ConfigError("batch norm needs at least 2 samples per batch")
    w = torch.full((f.shape[1],), c1, dtype=torch.float64)
    b = torch.full((f.shape[1],), c0, dtype=torch.float64)
    case = "custom bn" if bn is not None else ("F.batch_norm" if eps == 0 else f"F.batch_norm, eps={eps}")
    bn = bn or (lambda v: F.batch_norm(v, None, None, w, b, training=True, eps=max(eps, 1e-300)))
    fr = f.clone().requires_grad_(True)
    auto, = torch.autograd.grad(bn(fr), fr, g)
    fc = f - f.mean(0)
    sigma = fc.pow(2).mean(0).sqrt()
    ft = fc / sigma  # unit norm under <a,b> = mean(a b)
    gc = g - g.mean(0)
    proj = gc - (gc * ft).mean(0) * ft
    closed = c1 / sigma * proj
    res = _rel(auto, closed)
    details = {"orthogonal_to_1": float(closed.mean(0).abs().max()),
               "orthogonal_to_f": float((closed * fc).mean(0).abs().max()),
               "autograd_orthogonal_to_f": float((auto * fc).mean(0).abs().max()
                                                 / auto.norm().clamp_min(1e-300)),
               "eps": eps}
    return TheoremCheck("Theorem 5 (BN backward)", case, res, TOL,
                        res <= TOL, [res], details)


def construct_relu_solution(teacher: LCTeacher) -> LCStudent:
    """The zero-loss ReLU student of Theorem 6 for a bijective teacher with one-hot inputs.

    Node a of field α fires (value 1) iff each child field β is in the state that the
    lookup table maps to a: weight 1 from that child node, bias -(fan_in - 1).
    """
    if teacher.kind != "bijective" or teacher.channels != teacher.m[0]:
        raise ConfigError("the Theorem 6 construction needs a bijective teacher with one-hot inputs")
    tree = teacher.tree
    s = LCStudent(tree, teacher.channels, teacher.m[1:-1], teacher.classes, top_activation=True).double()
    with torch.no_grad():
        for lev in range(1, tree.depth + 1):
            layer = s.levels[lev - 1]
            K = layer.fan_in
            layer.weight.zero_()
            layer.bias.fill_(-(K - 1))
            for a in range(tree.n_fields(lev)):
                inv = torch.argsort(teacher.tables[lev][a])  # value -> children code
                for slot in range(K):
                    digit = (inv // teacher.m[lev - 1] ** (K - 1 - slot)) % teacher.m[lev - 1]
                    # weight index: input channel c of this slot is column c*K + slot
                    layer.weight[a, torch.arange(teacher.m[lev]), digit * K + slot] = 1.0
    return s


def _fit(student: LCStudent, x: torch.Tensor, y: torch.Tensor, steps: int, lr: float) -> float:
    opt = torch.optim.Adam(student.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        loss = (student(x) - y).pow(2).sum(1).mean()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return float((student(x) - y).pow(2).sum(1).mean())


def check_relu_vs_linear(length: int = 4, kernel: int = 2, m0: int = 2, widths=None, steps: int = 300,
                         seed: int = 0) -> TheoremCheck:
    """Theorem 6: on an all-vertex teacher a ReLU net with n_α = m_α fits exactly, a linear one cannot.

    Teacher: bijective lookup tables on a 1-D input of `length` one-hot leaves (depth 2),
    so every P_αβ is all-vertex; the target is the one-hot label over all inputs, the loss
    the mean squared error. The ReLU side: the theorem's zero-loss weights
    (`construct_relu_solution`, available when the widths are the m_α) checked by a forward
    pass, and a student trained from random weights (`steps` full-batch Adam steps; gradient
    descent often stalls with dead output nodes, so this is reported, not required). The
    linear side: the optimum of every linear student in closed form (least squares on the
    inputs) and a trained linear student. Holds when the best ReLU loss is below 1% of
    the linear optimum (and the latter is positive).

    Arguments:
        widths: student nodes per field of level 1 (default `m_1`, the theorem's n_α = m_α;
            fewer nodes break the condition and no zero-loss weights are known).
        steps: training steps of the random-start students.
    """
    tree = build_tree(length, 2, kernel)
    teacher = make_teacher(tree, m0, "bijective", seed=seed)
    leaves = teacher.enumerate_leaves()
    x = teacher.inputs(leaves)
    y = F.one_hot(teacher.evaluate(leaves)[-1][:, 0], teacher.classes).double()
    widths = tuple(teacher.m[1:-1]) if widths is None else tuple(widths)
    ls_x = torch.cat([x.flatten(1), torch.ones(x.shape[0], 1, dtype=torch.float64)], 1)
    coef = torch.linalg.pinv(ls_x) @ y  # one-hot columns are collinear: pinv, not lstsq
    linear_min = float((ls_x @ coef - y).pow(2).sum(1).mean())
    constructed = float("nan")
    if widths == tuple(teacher.m[1:-1]):
        with torch.no_grad():
            constructed = float((construct_relu_solution(teacher)(x) - y).pow(2).sum(1).mean())
    with few_threads():
        relu = LCStudent(tree, teacher.channels, widths, teacher.classes, top_activation=True,
                         seed=seed + 10).double()
        relu_trained = _fit(relu, x, y, steps, 0.02)
        lin = LCStudent(tree, teacher.channels, widths, teacher.classes, activation="linear",
                        seed=seed + 10).double()
        linear_trained = _fit(lin, x, y, steps, 0.02)
    relu_loss = min(relu_trained, constructed) if constructed == constructed else relu_trained
    holds = linear_min > TOL and relu_loss <= 0.01 * linear_min
    case = f"bijective teacher (m={list(teacher.m)}), student widths {list(widths)}"
    return TheoremCheck("Theorem 6 (ReLU vs linear)", case, relu_loss, 0.01 * linear_min, holds, [relu_loss],
                        {"relu_loss": relu_loss, "relu_constructed_loss": constructed,
                         "relu_trained_loss": relu_trained, "linear_trained_loss": linear_trained,
                         "linear_min_loss": linear_min, "loss_of_zero_output": float(y.pow(2).sum(1).mean())})


def _factor_teacher(length: int, depth: int, kernel: int, m, seed: int):
    tree = build_tree(length, depth, kernel)
    return [make_teacher(tree, m, "table", seed=seed + i) for i in range(2)]


def check_disentanglement(length: int = 8, depth: int = 3, kernel: int = 2, m=(2, 3, 3, 2),
                          widths=(4, 4), separate: bool = True, factorised: bool = True,
                          seed: int = 0) -> TheoremCheck:
    """Theorem 8: a factorised teacher and separated weights give disentangled F_α at every level.

    The teacher's variables are pairs `z_α = (z¹_α, z²_α)` of two independent lookup-table
    teachers (so every P_αβ = P¹ ⊗ P²); the input concatenates both one-hot codes. The
    student has `widths[l]` nodes per factor and field; with `separate=True` factor-c nodes
    only see factor-c nodes below (W separates). A node is disentangled when its
    `f_j(z¹, z²)` depends on one factor only; the residual is the largest share of a
    node's variance over z_α that its best single factor leaves unexplained.
    Broken inputs: `separate=False` (dense W), or `factorised=False` (the second factor's
    leaves are a function of the first's, so the factors are dependent and P_αβ does not
    factorise).
    """
    t1, t2 = _factor_teacher(length, depth, kernel, m, seed)
    tree, m = t1.tree, t1.m
    L = tree.n_fields(0)
    codes = torch.arange(m[0] ** (2 * L))
    leaves = torch.stack([(codes // m[0] ** i) % m[0] for i in range(2 * L)], 1)
    l1, l2 = leaves[:, :L], leaves[:, L:]
    if not factorised:  # second factor's leaves are a function of the first's: factors correlated
        l2 = (l1 + l1.roll(1, dims=1)) % m[0]
    z1, z2 = t1.evaluate(l1), t2.evaluate(l2)
    x = torch.cat([t1.inputs(l1), t2.inputs(l2)], 1)
    n = [2 * w for w in widths]
    student = LCStudent(tree, 2 * t1.channels, n, 2 * m[-1], seed=seed + 7).double()
    if separate:
        with torch.no_grad():
            ins = [t1.channels, *widths]
            outs = [*widths, m[-1]]
            for lev, layer in enumerate(student.levels):
                K = layer.fan_in
                cin = torch.arange(2 * ins[lev]).repeat_interleave(K) >= ins[lev]  # factor of each column
                cout = torch.arange(2 * outs[lev]) >= outs[lev]
                layer.weight.mul_((cout[:, None] == cin[None, :]).double())
    with torch.no_grad():
        _, post = student.trace(x)
    per_level = []
    for lev in range(1, tree.depth + 1):
        worst = 0.0
        for a in range(tree.n_fields(lev)):
            za = z1[lev][:, a] * m[lev] + z2[lev][:, a]
            Fa, counts = _group_mean(post[lev - 1].flatten(2)[:, :, a], za, m[lev] ** 2)
            w = (counts / counts.sum())[:, None]
            grid = Fa.view(m[lev], m[lev], -1)
            wg = w.view(m[lev], m[lev], 1)
            mean = (wg * grid).sum((0, 1))
            total = (wg * (grid - mean).pow(2)).sum((0, 1))
            best = None
            for dim in (0, 1):  # keep factor 1 (average over dim 1), or keep factor 2
                other = 1 - dim
                marg = (wg * grid).sum(other, keepdim=True) / wg.sum(other, keepdim=True).clamp_min(1e-300)
                left = (wg * (grid - marg).pow(2)).sum((0, 1))
                best = left if best is None else torch.minimum(best, left)
            share = best / total.clamp_min(1e-300)
            share = torch.where(total > 1e-20 * (mean.pow(2) + 1), share, torch.zeros_like(share))
            worst = max(worst, float(share.max()))
        per_level.append(worst)
    case = ("factorised teacher" if factorised else "correlated factors") + (
        ", separated W" if separate else ", dense W")
    res = max(per_level)
    return TheoremCheck("Theorem 8 (forward disentanglement)", case, res, TOL, res <= TOL, per_level)


def check_all(seed: int = 0, quick: bool = True) -> list[TheoremCheck]:
    """Every check, each on an input meeting the conditions and on one breaking them.

    Returns:
        A list of `TheoremCheck` (conditions met first, then broken, per theorem).
    """
    good = make_setup("bijective", seed=seed)
    bad = make_setup("table", m=(2, 3, 3, 2), seed=seed)
    gen = torch.Generator().manual_seed(seed)
    f = torch.randn(64, 4, generator=gen, dtype=torch.float64)
    g = torch.randn(64, 4, generator=gen, dtype=torch.float64)
    steps = 200 if quick else 2000
    with few_threads():
        return _check_all(good, bad, f, g, steps, seed)


def _check_all(good, bad, f, g, steps, seed) -> list[TheoremCheck]:
    return [
        check_marginal_recursion(good), check_marginal_recursion(good, pairs="non-children"),
        check_reformulation_forward(good), check_reformulation_forward(bad),
        check_reformulation_backward(good), check_reformulation_backward(bad),
        check_matrix_form(good), check_matrix_form(bad),
        check_batchnorm_projection(f, g), check_batchnorm_projection(0.01 * f, g, eps=1e-3),
        check_relu_vs_linear(steps=steps, seed=seed),
        check_relu_vs_linear(widths=(1,), steps=steps, seed=seed),
        check_disentanglement(seed=seed), check_disentanglement(separate=False, seed=seed),
    ]
