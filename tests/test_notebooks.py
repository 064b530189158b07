"""The example notebooks (jupytext percent files) execute in a real Jupyter kernel, on the
embedded data, and show their results as HTML tables and PNG figures."""

from __future__ import annotations

import base64
import json
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

jupytext = pytest.importorskip("jupytext")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("pandas")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "examples" / "notebooks"
KERNEL = "reluscope-test-python"
CELL_TIMEOUT_S = 180
PNG = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n").decode()[:11]  # PNG signature


@pytest.fixture(scope="module")
def kernel_dir(tmp_path_factory) -> Path:
    """A kernelspec that runs this interpreter (the venv's), under a name no user or system
    kernel has, in a folder put first on JUPYTER_PATH."""
    root = tmp_path_factory.mktemp("jupyter")
    spec = root / "kernels" / KERNEL
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    spec_json = {"argv": argv, "display_name": KERNEL, "language": "python"}
    (spec / "kernel.json").write_text(json.dumps(spec_json))
    return root


@pytest.fixture(scope="module")
def run(kernel_dir, tmp_path_factory):
    """Execute a notebook by file name (once per module) in a fresh folder; its code outputs."""
    done: dict[str, list[dict]] = {}

    def execute(name: str) -> list[dict]:
        if name not in done:
            nb = jupytext.read(NOTEBOOKS / name)
            cwd = tmp_path_factory.mktemp(name.removesuffix(".py"))
            with pytest.MonkeyPatch.context() as mp:
                mp.setenv("JUPYTER_PATH", str(kernel_dir))
                nbclient.NotebookClient(nb, kernel_name=KERNEL, timeout=CELL_TIMEOUT_S,
                                        resources={"metadata": {"path": str(cwd)}}).execute()
            done[name] = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
        return done[name]

    return execute


class _Tables(HTMLParser):
    """Every <table> of an HTML text as rows of cell texts (header row first)."""

    def __init__(self):
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self._row = []
            self.tables[-1].append(self._row)
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def html_outputs(outputs: list[dict]) -> list[str]:
    return [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]


def table(outputs: list[dict], *columns: str) -> dict[str, list[str]]:
    """The one HTML table shown with all of `columns`, as column -> cell texts."""
    found = []
    for text in html_outputs(outputs):
        parser = _Tables()
        parser.feed(text)
        for rows in parser.tables:
            if rows and all(c in rows[0] for c in columns):
                found.append({h: [r[i] for r in rows[1:]] for i, h in enumerate(rows[0])})
    assert len(found) == 1, f"{len(found)} tables with columns {columns}"
    return found[0]


def figures(outputs: list[dict]) -> tuple[int, int]:
    """(image/png outputs, PNGs embedded in HTML results)."""
    direct = sum("image/png" in o.get("data", {}) for o in outputs)
    return direct, sum(h.count(PNG) for h in html_outputs(outputs) if "<iframe" not in h)


def no_errors(outputs: list[dict]) -> None:
    errors = [o for o in outputs if o.get("output_type") == "error"]
    assert not errors
    assert not [o for o in outputs if o.get("name") == "stderr" and "Warning" in o.get("text", "")]


def test_every_notebook_is_tested():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.py")) == [
        "arora_reversibility.py", "behrmann_invertibility.py", "tian_teacher_student.py"]


def test_arora_reversibility(run):
    out = run("arora_reversibility.py")
    no_errors(out)
    assert "test accuracy after 5 epochs" in "".join(o.get("text", "") for o in out)
    layers = table(out, "layer", "activation")
    assert layers["layer"] == ["1", "3", "5"] and layers["activation"] == ["relu", "relu", "identity"]
    spec = table(out, "verdict", "init_verdict", "num_spikes")
    assert spec["layer"] == ["1", "3", "5"] and spec["verdict"][2] == "too small"
    assert spec["init_verdict"][:2] == ["random-like", "random-like"]  # the sanity check at init
    assert set(spec["verdict"]) <= {"random-like", "spiked", "heavy-tailed", "non-MP bulk", "too small"}
    theory = table(out, "ratio", "error_rel_best")
    assert len(theory["ratio"]) == 6  # 3 ratios k/t x 2 seeds
    rev = table(out, "error_rel_best", "rho", "codes")
    assert rev["name"] == ["1", "3"] and all(float(e) < 1 for e in rev["error_rel_best"])
    rec = table(out, "weights", "error_rel_mean_input_scaled")
    assert sorted(set(rec["weights"])) == ["random", "trained"] and sorted(set(rec["name"])) == ["1", "3"]
    direct, embedded = figures(out)
    assert direct >= 2 and embedded >= 3  # layer spectra, mosaic; summary, theorem 1, errors
    report = [h for h in html_outputs(out) if "<iframe srcdoc=" in h]
    assert len(report) == 1 and "Random-like weights" in report[0]


def test_behrmann_invertibility(run):
    out = run("behrmann_invertibility.py")
    no_errors(out)
    kinds = {"singleton", "compact", "unbounded", "degenerate"}
    per_sample = table(out, "kind", "n_positive", "null_dim")
    assert len(per_sample["kind"]) == 60 and set(per_sample["kind"]) <= kinds
    counts = table(out, "weights", "singleton", "compact", "unbounded")
    assert counts["weights"] == ["trained", "at initialisation"]
    assert all(sum(int(counts[k][i]) for k in kinds) == 60 for i in range(2))
    second = table(out, "m x n", "unbounded")
    assert second["m x n"] == ["64 x 96"] and second["unbounded"] == ["60"]
    wendel = table(out, "wendel (exact)", "estimate", "z")
    assert len(wendel["z"]) == 3 and all(abs(float(z)) < 4 for z in wendel["z"])
    jac = table(out, "stage", "rank", "condition")
    assert {"pre", "post"} <= set(jac["stage"]) and all(int(r) <= 64 for r in jac["rank"])
    lemma = table(out, "c_bound", "sigma_min", "holds")
    assert lemma["holds"] and set(lemma["holds"]) == {"True"}
    direct, embedded = figures(out)
    assert direct >= 2 and embedded >= 2  # histograms, effect of ReLU; per-layer histogram, decay


def test_tian_teacher_student(run):
    out = run("tian_teacher_student.py")
    no_errors(out)
    fc = table(out, "teacher_nodes", "mean_best")
    assert fc["layer"] == ["1", "2", "3", "4"] and fc["teacher_nodes"] == ["10", "15", "20", "25"]
    best = [float(v) for v in fc["mean_best"]]
    assert best[0] == max(best)  # the lowest layer is mimicked best
    lc = table(out, "level", "mean_correlation", "mean_selectivity")
    assert lc["level"] == ["1", "2"]
    theorems = table(out, "case", "residual", "holds")
    assert theorems["holds"] == ["True", "False"] * (len(theorems["holds"]) // 2)
    direct, embedded = figures(out)
    assert direct >= 1 and embedded >= 2  # residuals; FC best matches, LC mimicry
