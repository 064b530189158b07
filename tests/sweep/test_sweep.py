"""Sweeps: grid parsing, resumption, and a Dask LocalCluster run whose driver is killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from reluscope import sweep
from reluscope.errors import ConfigError

GRID = """
[sweep]
task = "echo"
seeds = [0, 1, 2]
[fixed]
sleep = {sleep}
[grid]
a = [1, 2, 3, 4]
b = ["x"]
"""


def _grid(tmp_path, sleep=0.0):
    path = tmp_path / f"grid-{sleep}.toml"
    path.write_text(GRID.format(sleep=sleep))
    return path


def _strip(rows):
    return [{k: v for k, v in r.items() if k not in ("seconds", "sleep")} for r in rows]


def test_grid_expansion_and_keys(tmp_path):
    grid = sweep.read_grid(_grid(tmp_path))
    cells = grid.cells()
    assert len(cells) == 12 and len({c.key for c in cells}) == 12
    assert cells[0].params == {"sleep": 0.0, "a": 1, "b": "x"}
    assert sweep.read_grid(_grid(tmp_path)).cells()[5].key == cells[5].key  # stable


def test_bad_grids(tmp_path):
    bad = tmp_path / "bad.toml"
    for text, match in [("[sweep]\n", "task"), ("[sweep]\ntask='echo'\nseeds=[]\n", "seeds"),
                        ("[sweep]\ntask='echo'\n[grid]\na=3\n", "list"), ("[sweep\n", "TOML"),
                        ("[sweep]\ntask='echo'\n[gird]\n", "unknown tables")]:
        bad.write_text(text)
        with pytest.raises(ConfigError, match=match):
            sweep.read_grid(bad)
    with pytest.raises(ConfigError, match="unknown task"):
        sweep.run_sweep(sweep.Grid("nope", (0,)), tmp_path / "o")


def test_resume_skips_finished_cells(tmp_path):
    grid = sweep.read_grid(_grid(tmp_path))
    out = tmp_path / "out"
    full = sweep.run_sweep(grid, out, workers=0)
    assert full.ran == 12 and full.table.is_file()
    ids = {p.name: json.loads(p.read_text())["run_id"] for p in (out / "cells").iterdir()}
    (out / "cells" / sorted(ids)[0]).unlink()  # as if that cell had never finished
    again = sweep.run_sweep(grid, out, workers=0)
    assert (again.skipped, again.ran) == (11, 1)
    after = {p.name: json.loads(p.read_text())["run_id"] for p in (out / "cells").iterdir()}
    assert all(after[k] == v for k, v in ids.items() if k != sorted(ids)[0])
    assert _strip(again.rows) == _strip(full.rows)


def test_local_processes_and_plots(tmp_path):
    from reluscope.cli import main

    grid = _grid(tmp_path)
    code = main(["sweep", str(grid), "--out", str(tmp_path / "p"), "--workers", "2", "--quiet"])
    assert code == 0
    rows = (tmp_path / "p" / "results.csv").read_text().splitlines()
    assert len(rows) == 13
    assert (tmp_path / "p" / "plots" / "value_vs_a.png").stat().st_size > 1000


def test_dask_cluster_driver_killed_midway(tmp_path):
    distributed = pytest.importorskip("distributed")
    grid_path = _grid(tmp_path, sleep=0.4)
    grid = sweep.read_grid(grid_path)
    baseline = sweep.run_sweep(grid, tmp_path / "baseline", workers=0)

    out = tmp_path / "cluster"
    cmd = [sys.executable, "-m", "reluscope", "sweep", str(grid_path), "--out", str(out), "--quiet"]
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        cmd += ["--scheduler", cluster.scheduler_address]
        driver = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.time() + 120
        while len(sweep.finished_keys(out)) < 3 and time.time() < deadline and driver.poll() is None:
            time.sleep(0.05)
        assert driver.poll() is None, driver.communicate()
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait()
        time.sleep(1.0)  # let in-flight cells finish on the workers: they are finished cells too
        before = {k: json.loads((out / "cells" / f"{k}.json").read_text())["run_id"]
                  for k in sweep.finished_keys(out)}
        assert 3 <= len(before) < 12
        rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
        assert rerun.returncode == 0, rerun.stderr
    assert f"{len(before)} already done, {12 - len(before)} run now" in rerun.stdout
    files = sorted((out / "cells").glob("*.json"))
    assert len(files) == 12 and {f.stem for f in files} == {c.key for c in grid.cells()}
    for key, run_id in before.items():  # finished cells were never run again
        assert json.loads((out / "cells" / f"{key}.json").read_text())["run_id"] == run_id
    rows = sweep.gather(out, grid.cells())
    assert _strip(rows) == _strip(baseline.rows)


def test_analysis_tasks_are_deterministic_and_consistent():
    spec = sweep.resolve_task("spectrum")(seed=0, arch="mlp:32", epochs=1)
    assert spec == sweep.resolve_task("spectrum")(seed=0, arch="mlp:32", epochs=1)
    assert spec["layers"] == 2 and 0 <= spec["random_like"] <= spec["layers"] and spec["test_acc"] > 0.3
    pre = sweep.resolve_task("preimage")(seed=0, hidden=128, epochs=1, samples=12)
    assert sum(pre[k] for k in ("singleton", "compact", "unbounded")) == 12 and pre["degenerate"] == 0
    # 128 ReLUs on 64 inputs: all singletons needs at least 64 positive outputs on average
    assert pre["singleton"] < 12 or pre["mean_positive"] >= 64
    fc = sweep.resolve_task("teacher")(seed=0, widths="4,6", multi=2, n_train=512, epochs=1)
    assert set(fc) == {"mean_best_L1", "mean_best_L2"} and all(0 <= v <= 1 for v in fc.values())
