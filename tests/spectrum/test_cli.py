"""`reluscope spectrum`: table, JSON, figures, initial model, errors."""

import copy
import json
import math
import re

import pytest
import torch

from reluscope import nets
from reluscope.cli import main

pytestmark = pytest.mark.usefixtures("trust_pickles")  # the tests save whole modules

EFFECT_HEADERS = ["layer", "bulk_frac", "energy_out", "ks/noise", "kurtosis [95% CI]", "spikes_shuffled",
                  "learned", "PT_bulk", "PT_top"]


def _effect_rows(printed: str) -> list[dict]:
    """The rows of the printed effect-size table, by header."""
    lines = printed.splitlines()
    start = lines.index("effect sizes:") + 1
    header = re.split(r"\s{2,}", lines[start].strip())
    rows = []
    for line in lines[start + 2:]:
        if not line or line.startswith("bulk_frac:"):
            break
        rows.append(dict(zip(header, re.split(r"\s{2,}", line.strip()))))
    return rows


def _check_effect_rows(rows: list[dict], table: list[dict]) -> None:
    assert [r["layer"] for r in rows] == [t["layer"] for t in table]
    for r, t in zip(rows, table):
        bulk, energy = float(r["bulk_frac"]), float(r["energy_out"])
        assert 0.0 <= bulk <= 1.0 and 0.0 <= energy <= 1.0
        assert bulk == pytest.approx(t["bulk_fraction"], abs=5e-4)
        assert (bulk == 1.0) == (t["outliers"] == 0) == (energy == 0.0)
        assert float(r["ks/noise"]) >= 0
        est, low, high = map(float, re.fullmatch(r"(\S+) \[(\S+), (\S+)\]", r["kurtosis [95% CI]"]).groups())
        assert low <= est <= high and est == pytest.approx(t["kurtosis"], abs=0.006)
        shuffled, learned = int(r["spikes_shuffled"]), int(r["learned"])
        assert shuffled >= 0 and learned == max(0, t["outliers"] - shuffled)
        for which in ("bulk", "top"):
            verdict, p = re.fullmatch(r"(ok|rej) p=(\S+)", r[f"PT_{which}"]).groups()
            assert 0.0 <= float(p) <= 1.0 and (verdict == "rej") == t[f"pt_{which}_rejected"]

def test_spectrum_command_with_checkpoint_init(tmp_path, capsys):
    torch.manual_seed(0)
    model = nets.build("mlp:32", (1, 8, 8), 10)
    path = nets.save_checkpoint(tmp_path / "m.pt", model, "mlp:32", (1, 8, 8), 10,
                                init_model=copy.deepcopy(model))
    out_json, figs = tmp_path / "s.json", tmp_path / "figs"
    assert main(["spectrum", str(path), "--init", "--json", str(out_json), "--out", str(figs), "-q"]) == 0
    printed = capsys.readouterr().out
    assert "verdict" in printed and "init_verdict" in printed
    assert all(h in printed for h in EFFECT_HEADERS + ["init_bulk_frac"])
    data = json.loads(out_json.read_text())
    rows = _effect_rows(printed)
    _check_effect_rows(rows, data["table"])
    assert all(r["init_bulk_frac"] == "1.000" for r in rows)  # untrained: no outliers
    assert [r["layer"] for r in data["table"]] == ["1", "3"]
    assert data["settings"]["init"] == "given"
    assert (figs / "summary.png").is_file() and (figs / "layer-1.png").is_file()


def test_conv_model_needs_input_shape(tmp_path, capsys):
    path = tmp_path / "cnn.pt"
    torch.save(nets.cifar_cnn(1, 6, 10), path)
    assert main(["spectrum", str(path), "-q"]) == 2
    assert "input shape" in capsys.readouterr().err
    assert main(["spectrum", str(path), "--input-shape", "1,6,6", "-q"]) == 0
    assert "operator norm" in capsys.readouterr().out


def test_bad_arguments(tmp_path, capsys):
    assert main(["spectrum", str(tmp_path / "missing.pt")]) == 2
    path = tmp_path / "m.pt"
    torch.save(nets.mlp([4, 8, 2]), path)
    assert main(["spectrum", str(path), "--false-alarm", "2"]) == 2
    assert "false-alarm" in capsys.readouterr().err


def test_spectrum_effect_sizes_on_a_trained_digits_mlp(tmp_path, capsys):
    pd = pytest.importorskip("pandas")
    path, js, csv = tmp_path / "m.pt", tmp_path / "s.json", tmp_path / "s.csv"
    assert main(["train", "--data", "digits", "--arch", "mlp:64", "--epochs", "3", "--out", str(path),
                 "--quiet"]) == 0
    capsys.readouterr()
    assert main(["spectrum", str(path), "--json", str(js), "--csv", str(csv), "-q"]) == 0
    printed = capsys.readouterr().out
    assert "init_bulk_frac" not in printed and "a random-like bulk has >= 0.9" in printed
    table = json.loads(js.read_text())["table"]
    rows = _effect_rows(printed)
    _check_effect_rows(rows, table)
    assert sum(t["outliers"] for t in table) > 0  # training grew spikes: some bulk fraction below 1
    assert min(float(r["bulk_frac"]) for r in rows) < 1.0
    df = pd.read_csv(csv, dtype={"layer": str})
    for col in ("bulk_fraction", "outlier_energy", "ks_bulk_over_noise", "kurtosis_low", "kurtosis_high",
                "shuffled_spikes", "learned_spikes", "pt_bulk_p", "pt_bulk_rejected", "pt_top_p",
                "pt_top_rejected"):
        assert col in df.columns, col
        assert df[col].tolist() == pytest.approx([t[col] for t in table], rel=1e-9, nan_ok=True)
    assert df["bulk_fraction"].between(0, 1).all() and not math.isnan(df["kurtosis_low"].iloc[0])
