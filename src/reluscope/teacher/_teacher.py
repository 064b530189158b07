"""Locally connected teacher: discrete summarisation variables z_α over a field tree.

Each input position carries a leaf variable with `m[0]` values (uniform, independent);
its input vector is an embedding of that value (one-hot by default) plus optional
Gaussian noise. Each field α at level l >= 1 summarises its children's values into
`z_α ∈ {0..m[l]-1}`: a random lookup table (`kind="table"`), an injective table
(`kind="bijective"`: nothing is lost, so P(x_α | z_α) is a point mass and every P_αβ is
all-vertex), or the arg-max of a small random ReLU net on the children's one-hot codes
(`kind="relu"`: a random ReLU net's scalar score, cut into `m[l]` equally likely
bins). The top variable z_ω is the label.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..errors import ConfigError
from ._tree import FieldTree

MAX_TABLE = 1 << 22  # entries of one field's lookup table
MAX_ENUMERATE = 1 << 16  # leaf configurations enumerated for an exact P(z_β|z_α)


@dataclass(frozen=True, eq=False)
class LCTeacher:
    """A teacher on `tree`; build it with `make_teacher`.

    Attributes:
        m: number of values of z at every level (`m[0]` leaves, `m[-1]` classes).
        kind: "table", "bijective" or "relu".
        tables: per level l >= 1, a `(fields, m[l-1]**fan_in)` long tensor (table kinds).
        nets: per level l >= 1, `(U, c, v, cuts)` of the random ReLU summariser (kind "relu").
        embed: `(m[0], channels)` input vector of every leaf value.
        noise: std of the Gaussian noise added to the input vectors.
    """

    tree: FieldTree
    m: tuple[int, ...]
    kind: str
    tables: tuple
    nets: tuple
    embed: torch.Tensor
    noise: float

    @property
    def channels(self) -> int:
        return self.embed.shape[1]

    @property
    def classes(self) -> int:
        return self.m[-1]

    def evaluate(self, leaves: torch.Tensor) -> list[torch.Tensor]:
        """All summarisation variables from leaf values.

        Arguments:
            leaves: `(N, positions)` long tensor of leaf values.

        Returns:
            `zs`, with `zs[l]` the `(N, fields_l)` long tensor of level l (`zs[0] = leaves`).
        """
        if leaves.ndim != 2 or leaves.shape[1] != self.tree.n_fields(0):
            raise ConfigError(f"leaves must have shape (N, {self.tree.n_fields(0)}), "
                              f"got {tuple(leaves.shape)}")
        zs = [leaves.long()]
        for lev in range(1, self.tree.depth + 1):
            idx = torch.tensor(self.tree._children[lev])  # (F, K)
            ch = zs[-1][:, idx]  # (N, F, K)
            if self.kind == "relu":
                zs.append(_relu_summary(ch, self.m[lev - 1], *self.nets[lev]))
            else:
                radix = self.m[lev - 1] ** torch.arange(ch.shape[2] - 1, -1, -1)
                code = (ch * radix).sum(-1)  # (N, F)
                zs.append(torch.gather(self.tables[lev].expand(ch.shape[0], -1, -1), 2,
                                       code.unsqueeze(-1)).squeeze(-1))
        return zs

    def inputs(self, leaves: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Input tensor `(N, channels, H, W)` of leaf values (noise drawn from `generator`)."""
        h, w = self.tree.input_size
        x = self.embed[leaves].permute(0, 2, 1).reshape(leaves.shape[0], self.channels, h, w)
        if self.noise > 0:
            x = x + self.noise * torch.randn(x.shape, generator=generator, dtype=x.dtype)
        return x

    def sample(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """`n` samples: inputs `(n, channels, H, W)` (float32) and the variables `zs`."""
        leaves = torch.randint(0, self.m[0], (n, self.tree.n_fields(0)), generator=generator)
        return self.inputs(leaves, generator).float(), self.evaluate(leaves)

    def enumerate_leaves(self, positions: list[int] | None = None,
                         limit: int = MAX_ENUMERATE) -> torch.Tensor:
        """Every configuration of the leaves at `positions` (others 0), each equally likely."""
        positions = list(range(self.tree.n_fields(0))) if positions is None else positions
        count = self.m[0] ** len(positions)
        if count > limit:
            raise ConfigError(f"{count} leaf configurations exceed the enumeration limit {limit}; "
                              f"use a smaller tree or alphabet, or sample")
        codes = torch.arange(count)
        leaves = torch.zeros(count, self.tree.n_fields(0), dtype=torch.long)
        for i, p in enumerate(positions):
            leaves[:, p] = (codes // self.m[0] ** (len(positions) - 1 - i)) % self.m[0]
        return leaves

    def transition(self, level: int, field: int, child: int, samples: int = 200_000,
                   seed: int = 0) -> Transition:
        """P(z_β | z_α) for field α=`field` at `level` and its child β=`child` at level-1.

        Exact (enumerating α's leaves) when at most `MAX_ENUMERATE` configurations,
        estimated from `samples` draws otherwise.
        """
        if not 1 <= level <= self.tree.depth or child not in self.tree.children(level, field):
            raise ConfigError(f"field {child} at level {level - 1} is not a child of field {field} "
                              f"at level {level}")
        leaves_a = self.tree.leaves(level, field)
        exact = self.m[0] ** len(leaves_a) <= MAX_ENUMERATE
        if exact:
            zs = self.evaluate(self.enumerate_leaves(leaves_a))
        else:
            gen = torch.Generator().manual_seed(seed)
            zs = self.evaluate(torch.randint(0, self.m[0], (samples, self.tree.n_fields(0)), generator=gen))
        return Transition.from_samples(zs[level][:, field], zs[level - 1][:, child],
                                       self.m[level], self.m[level - 1], exact)

    def to_dict(self) -> dict:
        return {"tree": self.tree.to_dict(), "m": self.m, "kind": self.kind, "channels": self.channels,
                "noise": self.noise}


def _relu_score(ch, m_child, U, c, v) -> torch.Tensor:
    onehot = torch.nn.functional.one_hot(ch, m_child).flatten(2).double()  # (N, F, K*m)
    return (torch.relu(torch.einsum("nfi,fih->nfh", onehot, U) + c) * v).sum(-1)  # (N, F)


def _relu_summary(ch, m_child, U, c, v, cuts) -> torch.Tensor:
    score = _relu_score(ch, m_child, U, c, v)
    return (score.unsqueeze(-1) > cuts).sum(-1)  # bin index per field


@dataclass(frozen=True)
class Transition:
    """P(z_β | z_α) as an `(m_α, m_β)` matrix (rows of impossible z_α are zero)."""

    P: torch.Tensor
    prior: torch.Tensor  # P(z_α)
    exact: bool

    @staticmethod
    def from_samples(za: torch.Tensor, zb: torch.Tensor, ma: int, mb: int, exact: bool) -> Transition:
        joint = torch.zeros(ma * mb, dtype=torch.float64).index_add_(
            0, za * mb + zb, torch.ones(za.shape[0], dtype=torch.float64)).view(ma, mb)
        prior = joint.sum(1)
        P = joint / prior.clamp_min(1)[:, None]
        return Transition(P, prior / prior.sum(), exact)

    def is_all_vertex(self, tol: float = 1e-9) -> bool:
        """Whether each possible row is one-hot (a vertex of the simplex, hence of the hull)."""
        rows = self.P[self.prior > 0]
        return bool(((rows.max(1).values - 1).abs() < tol).all())


def make_teacher(tree: FieldTree, m=(2, 3, 3, 2), kind: str = "table", channels: int | None = None,
                 noise: float = 0.0, seed: int = 0) -> LCTeacher:
    """A random teacher on `tree`.

    Arguments:
        tree: the receptive fields (`build_tree`).
        m: values per level, `depth + 1` ints (leaves first, classes last); for
            `kind="bijective"` only `m[0]` is used, the rest is `m[l-1] ** fan_in`.
        kind: "table" (random lookup, every value used), "bijective" (injective lookup)
            or "relu" (arg-max of a random ReLU net of the children's one-hot codes).
        channels: input channels; default `m[0]` with one-hot embedding, else Gaussian codes.
        noise: std of Gaussian noise on the inputs (0: P(x_j|z_leaf) is a point mass).
        seed: seed of every random choice.

    Returns:
        An `LCTeacher`.

    Example:
        >>> from reluscope.teacher import build_tree
        >>> t = make_teacher(build_tree(4, depth=2, kernel=2), m=2, kind="bijective")
        >>> t.m
        (2, 4, 16)
    """
    if kind not in ("table", "bijective", "relu"):
        raise ConfigError(f"unknown teacher kind '{kind}'; use table, bijective or relu")
    gen = torch.Generator().manual_seed(seed)
    depth = tree.depth
    fan = [0] + [len(tree.children(lev, 0)) for lev in range(1, depth + 1)]
    m = (m,) if isinstance(m, int) else tuple(int(v) for v in m)
    if kind == "bijective":
        m = m[:1]
        for lev in range(1, depth + 1):
            m = m + (m[-1] ** fan[lev],)
    if len(m) != depth + 1 or min(m) < 2:
        raise ConfigError(f"m needs {depth + 1} values >= 2 (leaves, levels 1..{depth}), got {m}")
    tables, nets = [None], [None]
    for lev in range(1, depth + 1):
        n_f, entries = tree.n_fields(lev), m[lev - 1] ** fan[lev]
        if kind == "relu":
            hidden = 4 * m[lev]
            U = torch.randn(n_f, fan[lev] * m[lev - 1], hidden, generator=gen, dtype=torch.float64)
            c = torch.randn(n_f, hidden, generator=gen, dtype=torch.float64)
            v = torch.randn(n_f, hidden, generator=gen, dtype=torch.float64)
            # bins equally likely under uniform children: quantiles of the score on random codes
            probe = torch.randint(0, m[lev - 1], (4096, n_f, fan[lev]), generator=gen)
            score = _relu_score(probe, m[lev - 1], U, c, v)
            cuts = torch.quantile(score, torch.linspace(0, 1, m[lev] + 1, dtype=torch.float64)[1:-1], dim=0).T
            nets.append((U, c, v, cuts.contiguous()))
            tables.append(None)
            continue
        if entries > MAX_TABLE:
            raise ConfigError(f"level {lev}: a lookup table of {entries} entries is too large; "
                              f"use kind='relu', a smaller fan-in or fewer values")
        if kind == "bijective":
            t = torch.stack([torch.randperm(entries, generator=gen) for _ in range(n_f)])
        else:
            if entries < m[lev]:
                raise ConfigError(f"level {lev}: {entries} child combinations cannot take {m[lev]} values; "
                                  f"lower m[{lev}]")
            t = torch.randint(0, m[lev], (n_f, entries), generator=gen)
            for f in range(n_f):  # every value occurs at least once
                t[f, torch.randperm(entries, generator=gen)[:m[lev]]] = torch.arange(m[lev])
        tables.append(t)
        nets.append(None)
    if channels is None:
        embed = torch.eye(m[0], dtype=torch.float64)
    else:
        embed = torch.randn(m[0], channels, generator=gen, dtype=torch.float64)
    if noise < 0 or not math.isfinite(noise):
        raise ConfigError(f"noise must be a finite number >= 0, got {noise}")
    return LCTeacher(tree, m, kind, tuple(tables), tuple(nets), embed, float(noise))
