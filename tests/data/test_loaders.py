"""Data loaders on the real files in ../shared/data, and every malformed-input error."""

from __future__ import annotations

import gzip
import hashlib

import numpy as np
import pytest
import torch
from PIL import Image

from reluscope import data
from reluscope.errors import ConfigError, DataError


def test_digits_is_embedded_and_split():
    ds = data.load("digits")
    assert ds.spec.shape == (1, 8, 8) and ds.spec.classes == 10
    assert len(ds.train) + len(ds.test) == 1797
    assert 0.0 <= float(ds.train.x.min()) and float(ds.train.x.max()) <= 1.0
    again = data.load("digits")
    assert torch.equal(ds.test.y, again.test.y)  # same seed, same split
    assert not torch.equal(data.load("digits", seed=1).test.y, ds.test.y)


def _idx_header_labels(path) -> np.ndarray:
    raw = gzip.open(path).read()
    assert int.from_bytes(raw[:4], "big") == 0x801
    n = int.from_bytes(raw[4:8], "big")
    return np.frombuffer(raw[8:8 + n], np.uint8)


def test_mnist_idx_folder(mnist_dir):
    images = mnist_dir / "t10k-images-idx3-ubyte.gz"
    assert hashlib.md5(images.read_bytes()).hexdigest() == "9fb629c4189551a2d022fa330f9573f3"
    ds = data.load(mnist_dir)
    assert len(ds.train) + len(ds.test) == 10_000
    assert (len(ds.train), len(ds.test)) == (8000, 2000)
    assert tuple(ds.train.x.shape[1:]) == (1, 28, 28) and ds.spec.classes == 10
    # labels are those of the IDX file, in some permuted order
    want = _idx_header_labels(mnist_dir / "t10k-labels-idx1-ubyte.gz")
    got = torch.cat([ds.train.y, ds.test.y]).numpy()
    assert np.array_equal(np.bincount(got, minlength=10), np.bincount(want, minlength=10))
    # and each image keeps its own label: read the raw arrays directly
    x = data.read_idx(images)
    assert x.shape == (10_000, 28, 28)
    first = torch.from_numpy(x[0].astype(np.float32) / 255)
    idx = [i for i in range(len(ds.train)) if torch.equal(ds.train.x[i, 0], first)]
    idx_test = [i for i in range(len(ds.test)) if torch.equal(ds.test.x[i, 0], first)]
    label = (ds.train.y[idx[0]] if idx else ds.test.y[idx_test[0]]).item()
    assert label == int(want[0])


def test_cifar_image_folder(cifar_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("RELUSCOPE_CACHE", str(tmp_path / "cache"))
    ds = data.load(cifar_dir)
    assert (len(ds.train), len(ds.test)) == (10_000, 10_000)
    assert tuple(ds.train.x.shape[1:]) == (3, 32, 32) and ds.spec.classes == 10
    assert ds.spec.class_names[0] == "airplane"
    assert torch.equal(torch.bincount(ds.test.y), torch.full((10,), 1000))
    cached = data.load(cifar_dir)  # from the cache: identical
    assert torch.equal(cached.train.x[:50], ds.train.x[:50]) and torch.equal(cached.test.y, ds.test.y)


def _write_idx(path, array: np.ndarray, magic_type=0x08, gz=False):
    header = bytes([0, 0, magic_type, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    (gzip.open if gz else open)(path, "wb").write(raw)


def test_idx_raw_and_gz_agree(tmp_path):
    rng = np.random.default_rng(0)
    imgs, labs = rng.integers(0, 255, (20, 4, 4)), rng.integers(0, 10, 20)
    for gz in (False, True):
        sfx = ".gz" if gz else ""
        d = tmp_path / f"d{int(gz)}"
        d.mkdir()
        _write_idx(d / f"t10k-images-idx3-ubyte{sfx}", imgs, gz=gz)
        _write_idx(d / f"t10k-labels-idx1-ubyte{sfx}", labs, gz=gz)
        assert np.array_equal(data.read_idx(d / f"t10k-images-idx3-ubyte{sfx}"), imgs)
        ds = data.load(d)
        assert len(ds.train) + len(ds.test) == 20


def test_idx_errors(tmp_path):
    rng = np.random.default_rng(0)
    good = tmp_path / "good"
    good.mkdir()
    _write_idx(good / "t10k-images-idx3-ubyte", rng.integers(0, 255, (10, 4, 4)))
    with pytest.raises(DataError, match="not an IDX file .wrong magic"):
        (tmp_path / "bad").write_bytes(b"\x12\x34\x08\x03" + bytes(20))
        data.read_idx(tmp_path / "bad")
    raw = (good / "t10k-images-idx3-ubyte").read_bytes()
    (tmp_path / "trunc").write_bytes(raw[:-7])
    with pytest.raises(DataError, match="truncated"):
        data.read_idx(tmp_path / "trunc")
    with pytest.raises(DataError, match="does not exist"):
        data.read_idx(tmp_path / "nope")
    with pytest.raises(DataError, match="no matching labels"):
        data.load(good)
    _write_idx(good / "t10k-labels-idx1-ubyte", rng.integers(0, 10, 9))
    with pytest.raises(DataError, match="10 images but .* 9 labels"):
        data.load(good)


def _png(path, size=(4, 4), color=(10, 20, 30)):
    Image.new("RGB", size, color).save(path)


def test_image_folder_single_split_and_errors(tmp_path):
    root = tmp_path / "imgs"
    for cls in ("cat", "dog"):
        (root / cls).mkdir(parents=True)
        for i in range(5):
            _png(root / cls / f"{i}.png", color=(i, 0, 0))
    ds = data.load_image_folder(root, cache=False)
    assert len(ds.train) + len(ds.test) == 10 and ds.spec.class_names == ("cat", "dog")
    assert ds.spec.shape == (3, 4, 4)

    (root / "dog" / "notes.txt").write_text("not an image")
    with pytest.raises(DataError, match="notes.txt' is not a readable image"):
        data.load_image_folder(root, cache=False)

    empty = tmp_path / "empty"
    (empty / "cat").mkdir(parents=True)
    with pytest.raises(DataError, match="no images"):
        data.load(empty)
    bare = tmp_path / "bare"
    bare.mkdir()
    with pytest.raises(DataError, match="neither"):
        data.load(bare)


def test_missing_and_bad_sources(tmp_path):
    with pytest.raises(DataError, match="not found"):
        data.load(tmp_path / "missing")
    with pytest.raises(ConfigError):
        data.load("sparse-codes:k=x")


def test_sparse_codes_are_sparse_codes():
    ds = data.load("sparse-codes:n=400,dim=64,code_dim=32,k=4")
    assert ds.spec.shape == (64,) and ds.spec.classes == 4
    # x = r(alpha W h): about half of the coordinates are positive for Gaussian W
    frac = float((ds.train.x > 0).float().mean())
    assert 0.35 < frac < 0.65


def test_image_folder_cache_is_shared_by_relative_and_absolute_paths(tmp_path, monkeypatch):
    from reluscope.data._imagefolder import _cache_path

    root = tmp_path / "imgs"
    (root / "cat").mkdir(parents=True)
    _png(root / "cat" / "0.png", color=(1, 0, 0))
    monkeypatch.chdir(tmp_path)
    before = _cache_path(root)
    assert before == _cache_path(type(root)("imgs")) == _cache_path(type(root)("./imgs/../imgs"))
    _png(root / "cat" / "1.png", color=(2, 0, 0))  # a changed tree gets a new cache
    assert _cache_path(type(root)("imgs")) != before


class _Payload:
    """Unpickling this runs code: it creates `marker`."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_image_folder_cache_never_runs_code_and_is_rebuilt_when_bad(tmp_path, monkeypatch):
    import pickle

    from reluscope.data._imagefolder import _cache_path

    monkeypatch.setenv("RELUSCOPE_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "imgs"
    for cls in ("cat", "dog"):
        (root / cls).mkdir(parents=True)
        for i in range(3):
            _png(root / cls / f"{i}.png", color=(40 * i, 7, 200))
    fresh = data.load_image_folder(root, cache=False)
    cache = _cache_path(root)
    marker = tmp_path / "ran"
    bad_caches = [pickle.dumps({"train": _Payload(marker)}), b"not a cache", b""]
    for bad in bad_caches:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_bytes(bad)
        ds = data.load_image_folder(root)
        assert not marker.exists()
        assert torch.equal(ds.train.x, fresh.train.x) and torch.equal(ds.test.y, fresh.test.y)
        with np.load(cache, allow_pickle=False) as f:  # rebuilt as a plain array file
            assert f["train_x"].dtype == np.uint8
    again = data.load_image_folder(root)  # read back from the cache: the same tensors
    assert torch.equal(again.train.x, fresh.train.x) and again.spec.class_names == ("cat", "dog")
    assert again.train.x.dtype == torch.float32 and again.train.y.dtype == torch.int64
