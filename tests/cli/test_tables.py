"""--csv / --parquet beside --json: the written tables read back equal to the JSON numbers; a
missing pandas or pyarrow is one line and exit status 2."""

from __future__ import annotations

import json
import sys

import pytest

from reluscope.cli import main

pd = pytest.importorskip("pandas")
pytest.importorskip("pyarrow")

COMMANDS = [("spectrum",), ("jacobian",), ("shadow", "theory"), ("shadow", "reconstruct"),
            ("shadow", "train"), ("teacher", "fc"), ("teacher", "lc"), ("teacher", "theorems"), ("sweep",),
            ("info",), ("train",)]


def run(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("cmd", COMMANDS, ids=" ".join)
def test_every_analysis_command_has_table_options(capsys, cmd):
    code, out, _ = run(capsys, *cmd, "--help")
    assert code == 0 and "--csv" in out and "--parquet" in out and "--json" in out


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "m.pt"
    assert main(["train", "--data", "digits", "--arch", "mlp:32-16", "--epochs", "1", "--out", str(path),
                 "--quiet"]) == 0
    return path


def _both(tmp_path, stem):
    return tmp_path / f"{stem}.json", tmp_path / f"{stem}.csv", tmp_path / f"{stem}.parquet"


def test_train_tables(capsys, tmp_path):
    js, csv, pq = _both(tmp_path, "t")
    code, _, _ = run(capsys, "train", "--data", "digits", "--arch", "mlp:16", "--epochs", "2", "--out",
                     tmp_path / "m.pt", "--json", js, "--csv", csv, "--parquet", pq, "--quiet")
    assert code == 0
    history = json.loads(js.read_text())["history"]
    for df in (pd.read_csv(csv), pd.read_parquet(pq)):
        assert list(df["epoch"]) == [h["epoch"] for h in history]
        assert df["test_acc"].tolist() == pytest.approx([h["test_acc"] for h in history], rel=1e-12)
        assert df["time_s"].tolist() == pytest.approx([h["seconds"] for h in history], rel=1e-12)


def test_spectrum_tables(capsys, tmp_path, checkpoint):
    js, csv, pq = _both(tmp_path, "s")
    code, _, _ = run(capsys, "spectrum", checkpoint, "--init", "--json", js, "--csv", csv, "--parquet", pq,
                     "--quiet")
    assert code == 0
    layers = json.loads(js.read_text())["layers"]
    for df in (pd.read_csv(csv, dtype={"layer": str}), pd.read_parquet(pq)):
        assert list(df["layer"]) == [lay["name"] for lay in layers]
        assert df["alpha"].tolist() == pytest.approx([lay["tail"]["alpha"] for lay in layers], rel=1e-12)
        assert df["num_spikes"].tolist() == [lay["mp"]["n_outliers"] for lay in layers]
        assert df["ks_bulk"].tolist() == pytest.approx([lay["mp"]["ks_bulk"] for lay in layers], rel=1e-12)
        assert "init_alpha" in df.columns and "log_spectral_norm" in df.columns


def test_jacobian_tables(capsys, tmp_path, checkpoint):
    js, csv, pq = _both(tmp_path, "j")
    code, _, _ = run(capsys, "jacobian", checkpoint, "--n", "2", "--json", js, "--csv", csv, "--parquet", pq,
                     "--quiet")
    assert code == 0
    layers = json.loads(js.read_text())["layers"]
    ranks = [r for lay in layers for r in lay["rank"]]
    conds = [c for lay in layers for c in lay["condition"]]
    for df in (pd.read_csv(csv), pd.read_parquet(pq)):
        assert df["rank"].tolist() == ranks
        assert df["condition"].tolist() == pytest.approx(conds, rel=1e-12, nan_ok=True)


def test_teacher_theorems_list_table(capsys, tmp_path, monkeypatch):
    import torch

    from reluscope import teacher
    from reluscope.teacher import _theorems

    def few(seed=0, quick=True):
        return [teacher.check_batchnorm_projection(torch.randn(8, 2), torch.randn(8, 2))]

    monkeypatch.setattr(_theorems, "check_all", few)
    js, csv, _ = _both(tmp_path, "th")
    code, _, _ = run(capsys, "teacher", "theorems", "--json", js, "--csv", csv, "--quiet")
    assert code == 0
    checks = json.loads(js.read_text())
    df = pd.read_csv(csv)
    assert df["residual"].tolist() == pytest.approx([c["residual"] for c in checks], rel=1e-12)


def test_missing_pyarrow_is_one_line(capsys, tmp_path, checkpoint, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    code, out, err = run(capsys, "spectrum", checkpoint, "--parquet", tmp_path / "x.parquet")
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "pyarrow" in err and "pip install" in err and "Traceback" not in err
    assert not (tmp_path / "x.parquet").exists()


def test_missing_pandas_is_one_line(capsys, tmp_path, checkpoint, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)
    code, _, err = run(capsys, "spectrum", checkpoint, "--csv", tmp_path / "x.csv")
    assert code == 2 and err.count("\n") == 1
    assert "to_frame() needs pandas: pip install 'reluscope[frames]'" in err
