"""Built-in sources: scikit-learn's embedded digits, synthetic sparse codes, torchvision."""

from __future__ import annotations

import numpy as np
import torch

from ..errors import ConfigError, DataError
from ._dataset import Dataset, Split, make_spec, random_split


def load_digits(seed: int = 0, test_fraction: float = 0.2) -> Dataset:
    """scikit-learn's 1,797 handwritten 8×8 digits (embedded, no download), scaled to [0, 1]."""
    from sklearn.datasets import load_digits as sk_digits

    d = sk_digits()
    x = torch.from_numpy((d.images / 16.0).astype(np.float32)).unsqueeze(1)
    y = torch.from_numpy(d.target.astype(np.int64))
    train, test = random_split(x, y, test_fraction, seed)
    spec = make_spec("digits", train, test, tuple(str(i) for i in range(10)), "sklearn")
    return Dataset(train, test, spec, [f"split {len(train)}/{len(test)} with seed {seed}"])


def load_sparse_codes(n: int = 2000, dim: int = 256, code_dim: int = 64, k: int = 8,
                      classes: int = 4, seed: int = 0) -> Dataset:
    """Synthetic data from a random one-layer shadow model (Arora et al., eq. 1).

    Each sample has a nonnegative k-sparse code h whose support favours one of `classes`
    groups of code coordinates (its label); x = r(alpha W h) with W Gaussian
    (dim × code_dim), alpha = 2/dim, rescaled to [0, 1].
    """
    if not 0 < k <= code_dim or classes < 1 or code_dim < classes:
        raise ConfigError(f"sparse codes need 0 < k <= code_dim and classes <= code_dim "
                          f"(got k={k}, code_dim={code_dim}, classes={classes})")
    gen = torch.Generator().manual_seed(seed)
    y = torch.randint(classes, (n,), generator=gen)
    groups = torch.arange(code_dim) % classes
    # half of the support from the label's group, the rest anywhere
    score = torch.rand(n, code_dim, generator=gen) + (groups[None, :] == y[:, None]) * 0.5
    support = score.topk(k, dim=1).indices
    h = torch.zeros(n, code_dim).scatter_(1, support, torch.rand(n, k, generator=gen) + 0.5)
    w = torch.randn(dim, code_dim, generator=gen)
    x = torch.relu((2.0 / dim) * h @ w.T)
    x = x / x.max()
    train, test = random_split(x, y, 0.2, seed)
    spec = make_spec("sparse-codes", train, test, tuple(str(i) for i in range(classes)), "synthetic")
    return Dataset(train, test, spec, [f"n={n}, dim={dim}, code_dim={code_dim}, k={k}, seed={seed}"])


def load_torchvision(name: str, root: str, seed: int = 0) -> Dataset:
    """A torchvision data set (downloaded on first use into `root`)."""
    try:
        import torchvision
    except ImportError:
        raise DataError(f"torchvision:{name} needs torchvision; install reluscope[vision] or "
                        "point --data at a folder of MNIST IDX files / an ImageFolder") from None
    cls = getattr(torchvision.datasets, name, None)
    if cls is None:
        raise DataError(f"torchvision has no data set '{name}'")

    def split(train: bool) -> Split:
        ds = cls(root, train=train, download=True)
        x = torch.as_tensor(np.asarray(ds.data), dtype=torch.float32) / 255.0
        x = x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2)
        return Split(x.contiguous(), torch.as_tensor(np.asarray(ds.targets), dtype=torch.int64))

    train, test = split(True), split(False)
    names = tuple(getattr(cls(root, train=False, download=False), "classes", ()))
    return Dataset(train, test, make_spec(name.lower(), train, test, names, f"torchvision:{name}"))
