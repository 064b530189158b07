"""ImageFolder trees (`root/<class>/<image>`, optionally under `train/` and `test/`)."""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from .._io import atomic_write_bytes
from ..errors import DataError
from ._dataset import Dataset, Split, make_spec, random_split

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".ppm", ".pgm", ".tif", ".tiff", ".webp"}


def _class_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def is_image_folder(root: Path) -> bool:
    return root.is_dir() and bool(_class_dirs(root))


def _files(root: Path, classes: list[str]) -> tuple[list[Path], list[int]]:
    files, labels = [], []
    for label, name in enumerate(classes):
        for f in sorted((root / name).iterdir()):
            if f.name.startswith(".") or f.is_dir():
                continue
            files.append(f)
            labels.append(label)
    if not files:
        raise DataError(f"ImageFolder '{root}' has class folders but no images; put images "
                        "under root/<class>/")
    return files, labels


def _decode(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB") if im.mode not in ("L", "RGB") else im)
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"'{path}' is not a readable image ({type(exc).__name__}); remove it "
                        "from the ImageFolder tree") from None


def _read_split(root: Path, classes: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """The images as uint8 `(N, C, H, W)` and their labels."""
    files, labels = _files(root, classes)
    workers = min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(workers) as pool:  # Pillow releases the GIL while decoding
        arrays = list(pool.map(_decode, files))
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise DataError(f"images in '{root}' have different sizes {sorted(shapes)[:3]}...; "
                        "resize them to one size first")
    x = np.stack(arrays)
    x = x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)
    return torch.from_numpy(np.ascontiguousarray(x)), torch.tensor(labels)


def _cache_path(root: Path) -> Path:
    """Cache file of a tree, keyed by its absolute path, file count and first files' times
    (the same tree reached by a relative or an absolute path shares one cache)."""
    root = root.resolve()
    files = sorted(root.rglob("*"))
    stat = [(str(p.relative_to(root)), p.stat().st_mtime_ns) for p in files[:50]]
    key = hashlib.sha256(repr((str(root), len(files), stat)).encode())
    base = Path(os.environ.get("RELUSCOPE_CACHE", Path.home() / ".cache" / "reluscope"))
    return base / f"imagefolder-{key.hexdigest()[:16]}.npz"


def load_image_folder(root: str | Path, seed: int = 0, test_fraction: float = 0.2,
                      cache: bool = True) -> Dataset:
    """Read an ImageFolder tree with Pillow.

    `root/train/<class>/*` and `root/test/<class>/*` are used as they are; a single
    `root/<class>/*` tree is split with `seed`. Decoded arrays are cached (keyed by the
    tree's paths and modification times) so a second load is fast.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"image folder '{root}' does not exist")
    cache_file = _cache_path(root) if cache else None
    if cache_file is not None and cache_file.is_file():
        payload = _read_cache(cache_file)
        if payload is not None:
            return _from_payload(payload, root)
    sub = {p.name for p in _class_dirs(root)}
    notes = []
    if {"train", "test"} <= sub:
        classes = [p.name for p in _class_dirs(root / "train")]
        if not classes:
            raise DataError(f"'{root / 'train'}' has no class folders")
        train, test = _read_split(root / "train", classes), _read_split(root / "test", classes)
    else:
        classes = sorted(sub)
        if not classes:
            raise DataError(f"ImageFolder '{root}' is empty; expected root/<class>/<image> files")
        train, test = map(_as_tuple, random_split(*_read_split(root, classes), test_fraction, seed))
        notes.append(f"one split found: split {len(train[0])}/{len(test[0])} with seed {seed}")
    payload = dict(train=train, test=test, classes=classes, notes=notes)
    if cache_file is not None:
        _write_cache(cache_file, payload)
    return _from_payload(payload, root)


def _write_cache(path: Path, p: dict) -> None:
    import io

    buf = io.BytesIO()
    np.savez(buf, train_x=p["train"][0].numpy(), train_y=p["train"][1].numpy(), test_x=p["test"][0].numpy(),
             test_y=p["test"][1].numpy(), classes=np.array(p["classes"], dtype=str),
             notes=np.array(p["notes"], dtype=str))
    try:
        atomic_write_bytes(path, buf.getvalue())
    except OSError:
        pass  # caching is an optimisation only


def _read_cache(path: Path) -> dict | None:
    """The cached payload, or None when the file is not a consistent cache (then rebuilt)."""
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in ("train_x", "train_y", "test_x", "test_y", "classes", "notes")}
    except Exception:  # noqa: BLE001 - any unreadable cache is rebuilt, never trusted
        return None
    splits = [(arrays[f"{s}_x"], arrays[f"{s}_y"]) for s in ("train", "test")]
    consistent = all(x.dtype == np.uint8 and x.ndim == 4 and y.ndim == 1 and len(x) == len(y)
                     and np.issubdtype(y.dtype, np.integer) for x, y in splits)
    if not consistent or splits[0][0].shape[1:] != splits[1][0].shape[1:]:
        return None
    return dict(train=tuple(map(torch.from_numpy, splits[0])), test=tuple(map(torch.from_numpy, splits[1])),
                classes=arrays["classes"].tolist(), notes=arrays["notes"].tolist())


def _as_tuple(split: Split):
    return split.x, split.y


def _scaled(x: torch.Tensor, y: torch.Tensor) -> Split:
    return Split(x.to(torch.float32) / 255.0, y.to(torch.int64))


def _from_payload(p: dict, root: Path) -> Dataset:
    train, test = _scaled(*p["train"]), _scaled(*p["test"])
    spec = make_spec(root.name, train, test, tuple(p["classes"]), str(root))
    return Dataset(train, test, spec, list(p["notes"]))
