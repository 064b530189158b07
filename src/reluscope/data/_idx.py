"""MNIST-style IDX files (raw or gzip), read with numpy and checked field by field."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from ._dataset import Dataset, Split, make_spec, random_split

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file; a bad magic number or a truncated file raises DataError."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"IDX file '{path}' does not exist")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"cannot read '{path}' ({exc}); the download is corrupt, fetch it again") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES:
        raise DataError(f"'{path}' is not an IDX file (wrong magic number "
                        f"{raw[:4].hex() or 'empty'}); give MNIST-format *-idx*-ubyte files")
    dtype, ndim = np.dtype(_DTYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"'{path}' is truncated inside its header; fetch it again")
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", ndim, 4))
    want = int(np.prod(dims)) * dtype.itemsize
    if len(raw) - header != want:
        raise DataError(f"'{path}' is truncated or padded: header says {dims} "
                        f"({want} bytes) but {len(raw) - header} bytes follow; fetch it again")
    return np.frombuffer(raw, dtype, offset=header).reshape(dims)


def _find(folder: Path, split: str, kind: str) -> Path | None:
    for pattern in (f"{split}-{kind}-idx*", f"{split}*{kind}*idx*"):
        hits = sorted(folder.glob(pattern))
        if hits:
            return hits[0]
    return None


def _pair(images: Path, labels: Path) -> Split:
    x, y = read_idx(images), read_idx(labels)
    if x.ndim != 3 or y.ndim != 1:
        raise DataError(f"'{images}' must hold N×H×W images and '{labels}' N labels; got "
                        f"shapes {x.shape} and {y.shape}")
    if len(x) != len(y):
        raise DataError(f"'{images}' has {len(x)} images but '{labels}' has {len(y)} labels; "
                        "use files of the same split")
    xt = torch.from_numpy(x.astype(np.float32) / 255.0).unsqueeze(1)
    return Split(xt, torch.from_numpy(y.astype(np.int64)))


def is_idx_folder(folder: Path) -> bool:
    return folder.is_dir() and any(folder.glob("*idx*"))


def load_idx_folder(folder: str | Path, seed: int = 0, test_fraction: float = 0.2) -> Dataset:
    """MNIST from a folder of IDX files (`train-*` and/or `t10k-*`, raw or .gz).

    With both splits present they are used as they are; with one split only (e.g. the
    test set), it is split into train/test with `seed`.
    """
    folder = Path(folder)
    found = {s: (_find(folder, s, "images"), _find(folder, s, "labels")) for s in ("train", "t10k")}
    splits = {s: _pair(*p) for s, p in found.items() if p[0] and p[1]}
    for s, (img, lab) in found.items():
        if bool(img) != bool(lab):
            raise DataError(f"'{folder}' has {s} {'images' if img else 'labels'} but no matching "
                            f"{'labels' if img else 'images'} file")
    if not splits:
        raise DataError(f"no IDX image/label files in '{folder}'; expected e.g. "
                        "t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz")
    notes = []
    if len(splits) == 2:
        train, test = splits["train"], splits["t10k"]
    else:
        (name, only), = splits.items()
        train, test = random_split(only.x, only.y, test_fraction, seed)
        notes.append(f"only the {name} split was found: split {len(train)}/{len(test)} with seed {seed}")
    spec = make_spec("mnist", train, test, tuple(str(i) for i in range(10)), str(folder))
    return Dataset(train, test, spec, notes)
