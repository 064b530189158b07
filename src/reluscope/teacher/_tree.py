"""Receptive-field hierarchy: a tree of fields over a 1-D or 2-D input.

Level 0 is the input grid (one leaf per position). Level l (1 <= l < depth) is the grid of
fields obtained by sliding a `kernel` window with `stride` over level l-1 (overlap when
stride < kernel); the top level `depth` is one field ω covering all of level depth-1.
Fields of a level are numbered row-major, children of a field in window order (di, dj),
which is the order `torch.nn.functional.unfold` (hence `LocallyConnected2d`) uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from ..errors import ConfigError


def _pair(v, name: str) -> tuple[int, int]:
    t = (1, int(v)) if isinstance(v, int) else tuple(int(a) for a in v)
    if len(t) == 1:
        t = (1, t[0])
    if len(t) != 2 or min(t) < 1:
        raise ConfigError(f"{name} must be a positive int or a pair of positive ints, got {v!r}")
    return t


@dataclass(frozen=True)
class FieldTree:
    """The fields of every level and who is whose child.

    Attributes:
        grids: grid size `(h, w)` of every level, `grids[0]` the input, `grids[depth] == (1, 1)`.
        kernels, strides: window and step of every level l >= 1 (index 0 unused, `(1, 1)`).
    """

    grids: tuple[tuple[int, int], ...]
    kernels: tuple[tuple[int, int], ...]
    strides: tuple[tuple[int, int], ...]

    @property
    def depth(self) -> int:
        return len(self.grids) - 1

    @property
    def input_size(self) -> tuple[int, int]:
        return self.grids[0]

    def n_fields(self, level: int) -> int:
        h, w = self.grids[level]
        return h * w

    def children(self, level: int, field: int) -> list[int]:
        """Indices at level-1 of the children of `field` at `level` (window order)."""
        return self._children[level][field]

    def parents(self, level: int, field: int) -> list[int]:
        """Indices at level+1 of the fields whose window contains `field` at `level`."""
        return self._parents[level][field]

    def leaves(self, level: int, field: int) -> list[int]:
        """Input positions (row-major) covered by `field` at `level`."""
        return self._leaves[level][field]

    @cached_property
    def _children(self) -> list[list[list[int]]]:
        out: list[list[list[int]]] = [[]]
        for lev in range(1, self.depth + 1):
            (h, w), (_, pw) = self.grids[lev], self.grids[lev - 1]
            (kh, kw), (sh, sw) = self.kernels[lev], self.strides[lev]
            out.append([[(i * sh + di) * pw + (j * sw + dj) for di in range(kh) for dj in range(kw)]
                        for i in range(h) for j in range(w)])
        return out

    @cached_property
    def _parents(self) -> list[list[list[int]]]:
        out = [[[] for _ in range(self.n_fields(lev))] for lev in range(self.depth + 1)]
        for lev in range(1, self.depth + 1):
            for a, ch in enumerate(self._children[lev]):
                for b in ch:
                    if a not in out[lev - 1][b]:
                        out[lev - 1][b].append(a)
        return out

    @cached_property
    def _leaves(self) -> list[list[list[int]]]:
        out = [[[p] for p in range(self.n_fields(0))]]
        for lev in range(1, self.depth + 1):
            out.append([sorted({p for b in ch for p in out[lev - 1][b]}) for ch in self._children[lev]])
        return out

    def to_dict(self) -> dict:
        return {"grids": self.grids, "kernels": self.kernels[1:], "strides": self.strides[1:],
                "fields_per_level": [self.n_fields(lev) for lev in range(self.depth + 1)]}


def build_tree(input_size, depth: int, kernel=2, stride=None) -> FieldTree:
    """A tree of receptive fields with `depth` levels above the input.

    Arguments:
        input_size: length `L` of a 1-D input or `(H, W)` of a 2-D one.
        depth: number of levels above the input; the last is the single top field ω.
        kernel: fan-in window (int: `k` for 1-D, `k x k` for 2-D) of levels 1..depth-1.
        stride: step of the window; default `kernel` (no overlap); smaller means overlap.

    Returns:
        A `FieldTree`.

    Example:
        >>> t = build_tree(8, depth=3, kernel=2)
        >>> [t.n_fields(lev) for lev in range(4)], t.children(1, 1)
        ([8, 4, 2, 1], [2, 3])
    """
    one_d = isinstance(input_size, int)
    size = _pair(input_size, "input_size")
    if one_d:
        k, s = _pair(kernel, "kernel"), _pair(kernel if stride is None else stride, "stride")
    else:
        k = _pair((kernel, kernel) if isinstance(kernel, int) else kernel, "kernel")
        st = kernel if stride is None else stride
        s = _pair((st, st) if isinstance(st, int) else st, "stride")
    if depth < 1:
        raise ConfigError(f"depth must be at least 1, got {depth}")
    grids, kernels, strides = [size], [(1, 1)], [(1, 1)]
    for lev in range(1, depth):
        h, w = grids[-1]
        if k[0] > h or k[1] > w:
            raise ConfigError(f"level {lev}: kernel {k} does not fit the {h}x{w} grid below it; "
                              f"use a smaller depth or kernel, or a larger input")
        grids.append(((h - k[0]) // s[0] + 1, (w - k[1]) // s[1] + 1))
        kernels.append(k)
        strides.append(s)
    grids.append((1, 1))
    kernels.append(grids[-2])
    strides.append((1, 1))
    return FieldTree(tuple(grids), tuple(kernels), tuple(strides))
