"""Data sets with one uniform spec: digits, MNIST IDX, ImageFolder, torchvision, synthetic."""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError, DataError
from ._builtin import load_digits, load_sparse_codes, load_torchvision
from ._dataset import Dataset, DataSpec, Split, random_split
from ._idx import load_idx_folder, read_idx
from ._imagefolder import load_image_folder

__all__ = ["DataSpec", "Dataset", "Split", "load", "load_digits", "load_idx_folder",
           "load_image_folder", "load_sparse_codes", "load_torchvision", "random_split", "read_idx"]


def load(source: str | Path, seed: int = 0) -> Dataset:
    """Load a data set by name or path.

    Arguments:
        source: `digits` (embedded, the default of the report); a folder of MNIST IDX
            files; an ImageFolder tree; `sparse-codes` or `sparse-codes:n=..,dim=..,k=..`
            (synthetic); `torchvision:NAME[:ROOT]` (needs torchvision; downloads).
        seed: seed of the train/test split where the source has one split only.

    Returns:
        A `Dataset` with float32 inputs in [0, 1] and int64 labels.

    >>> ds = load("digits")
    >>> ds.spec.shape, ds.spec.classes, len(ds.train) + len(ds.test)
    ((1, 8, 8), 10, 1797)
    """
    text = str(source)
    if text == "digits":
        return load_digits(seed)
    if text.startswith("sparse-codes"):
        return load_sparse_codes(seed=seed, **_kwargs(text.partition(":")[2]))
    if text.startswith("torchvision:"):
        _, name, root = (text.split(":", 2) + ["~/.cache/reluscope/torchvision"])[:3]
        return load_torchvision(name, str(Path(root).expanduser()), seed)
    path = Path(text).expanduser()
    if not path.exists():
        raise DataError(f"data '{text}' not found: give digits, sparse-codes, torchvision:NAME, "
                        "a folder of MNIST IDX files or an ImageFolder tree")
    from ._idx import is_idx_folder
    from ._imagefolder import is_image_folder

    if is_idx_folder(path):
        return load_idx_folder(path, seed)
    if is_image_folder(path):
        return load_image_folder(path, seed)
    raise DataError(f"'{path}' is neither a folder of MNIST IDX files nor an ImageFolder tree "
                    "(root/<class>/<image>); check the path")


def _kwargs(text: str) -> dict:
    out = {}
    for part in filter(None, text.split(",")):
        key, eq, value = part.partition("=")
        if not eq or not value.strip().isdigit():
            raise ConfigError(f"bad option '{part}' in sparse-codes; write e.g. sparse-codes:n=2000,k=8")
        out[key.strip()] = int(value)
    return out
