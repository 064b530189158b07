"""The uniform data set type every loader returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..errors import DataError


@dataclass(frozen=True)
class Split:
    """Inputs `x` (float32, `(N, *shape)`) and integer labels `y` (`(N,)`)."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)


@dataclass(frozen=True)
class DataSpec:
    name: str
    shape: tuple[int, ...]
    classes: int
    value_range: tuple[float, float] = (0.0, 1.0)
    class_names: tuple[str, ...] = ()
    source: str = ""

    def to_dict(self) -> dict:
        return dict(name=self.name, shape=list(self.shape), classes=self.classes,
                    value_range=list(self.value_range), class_names=list(self.class_names),
                    source=self.source)


@dataclass(frozen=True)
class Dataset:
    """Train and test splits with a shared spec (shape, classes, value range)."""

    train: Split
    test: Split
    spec: DataSpec
    notes: list[str] = field(default_factory=list)

    def __repr__(self) -> str:
        return (f"Dataset({self.spec.name}: train {len(self.train)}, test {len(self.test)}, "
                f"shape {self.spec.shape}, {self.spec.classes} classes)")

    def to_dict(self) -> dict:
        return dict(spec=self.spec.to_dict(), train=len(self.train), test=len(self.test),
                    notes=list(self.notes))


def random_split(x: torch.Tensor, y: torch.Tensor, test_fraction: float, seed: int) -> tuple[Split, Split]:
    """Split one labelled set into train/test with a fixed seed (a permutation)."""
    if len(x) != len(y):
        raise DataError(f"{len(x)} images but {len(y)} labels; the files do not belong together")
    gen = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(x), generator=gen)
    n_test = int(round(len(x) * test_fraction))
    test, train = perm[:n_test], perm[n_test:]
    return Split(x[train], y[train]), Split(x[test], y[test])


def make_spec(name: str, train: Split, test: Split, class_names=(), source: str = "") -> DataSpec:
    both = torch.cat([train.y, test.y])
    classes = int(both.max()) + 1 if len(both) else 0
    lo = float(min(train.x.min(), test.x.min())) if len(both) else 0.0
    hi = float(max(train.x.max(), test.x.max())) if len(both) else 1.0
    return DataSpec(name, tuple(train.x.shape[1:]), max(classes, len(class_names)), (lo, hi),
                    tuple(class_names), source)
