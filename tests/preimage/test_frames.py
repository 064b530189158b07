"""Pre-image results as tables: `to_frame()`, `_repr_html_` and `--csv`/`--parquet` carry the
same numbers as the JSON."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import torch

from reluscope import nets
from reluscope.cli import main
from reluscope.preimage import classify_layer


def _layer():
    torch.manual_seed(0)
    model = nets.mlp([64, 48, 24, 10])
    x = torch.randn(9, 64)
    return model, classify_layer(model, 0, x, workers=1)


def test_frame_has_one_row_per_sample_with_the_json_numbers():
    _, res = _layer()
    df, d = res.to_frame(), res.to_dict()
    assert len(df) == d["n"] == 9 and set(df["layer"]) == {res.layer}
    for row, sample in zip(df.to_dict("records"), d["samples"]):
        assert row["kind"] == sample["kind"] and row["n_positive"] == sample["n_positive"]
        assert row["exact_signs"] == sample["exact_signs"] and np.isclose(row["time_s"], sample["seconds"])
    assert df["kind"].value_counts().to_dict() == {k: v for k, v in d["counts"].items() if v}


def test_result_displays_its_table_and_figure():
    _, res = _layer()
    html = res._repr_html_()
    assert "<table" in html and res.layer in html and "<img" in html


def test_cli_csv_and_parquet_equal_the_json(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "m.pt"
    nets.save_checkpoint(path, nets.mlp([64, 48, 24, 10]), "mlp:48-24", (1, 8, 8), 10, 0.0)
    out = {s: tmp_path / f"p.{s}" for s in ("json", "csv", "parquet")}
    assert main(["preimage", str(path), "--data", "digits", "--n", "7", "--workers", "1", "--quiet",
                 "--json", str(out["json"]), "--csv", str(out["csv"]), "--parquet", str(out["parquet"])]) == 0
    samples = json.loads(out["json"].read_text())["samples"]
    for df in (pd.read_csv(out["csv"]), pd.read_parquet(out["parquet"])):
        assert df["kind"].tolist() == [s["kind"] for s in samples]
        assert df["n_positive"].tolist() == [s["n_positive"] for s in samples]
