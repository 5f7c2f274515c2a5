"""The research notebooks run top to bottom on small generated scenes (as nbmake would run them),
and reach the results they are there to show.

Slow, so marked ``notebooks`` and left out of the default ``python -m pytest``; CI (``.ci/run``)
runs them as their own job: ``python -m pytest -m notebooks``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.model import CLASSES

from .conftest import REPO

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
# A cell appended to each notebook after its own cells: it prints what the notebook computed.
REPORT = {
    "01_explore.ipynb": "import json as _j; print('RESULT', _j.dumps({'alerts': int(len(alerts)), "
                        "'scars': int(len(scars)), 'classes': sorted(set(alerts['class'])), "
                        "'planted': int((~truth.below_mmu).sum())}))",
    "02_train_and_tune.ipynb": "import json as _j; print('RESULT', _j.dumps({'rows': int(len(table)), "
                               "'labels': sorted(set(table['label'])), 'heldout_alerts': int(len(alerts)), "
                               "'n_samples': card['n_samples']}))",
}


def run_notebook(path: Path, tmp_path: Path) -> dict:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    notebook = nbformat.read(path, as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell(REPORT[path.name]))
    client = nbclient.NotebookClient(notebook, timeout=240, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    errors = [o for o in outputs if o.get("output_type") == "error"]
    assert not errors, errors[0].get("evalue")
    # the figures show in the notebook (no forced non-interactive backend)
    assert any("image/png" in o.get("data", {}) for o in outputs), "no figure was displayed"
    printed = "".join(o.get("text", "") for o in notebook.cells[-1].get("outputs", []))
    return json.loads(printed.split("RESULT", 1)[1])


@pytest.mark.notebooks
def test_explore_notebook_finds_and_maps_the_planted_scars(tmp_path):
    result = run_notebook(REPO / "notebooks" / "01_explore.ipynb", tmp_path)
    assert result["planted"] >= 1 and result["alerts"] >= result["planted"] // 2, result
    assert result["scars"] >= result["alerts"], "every alert comes from a scar"
    assert set(result["classes"]) <= set(CLASSES) and "mining" in result["classes"]


@pytest.mark.notebooks
def test_training_notebook_learns_every_class_and_alerts_on_a_held_out_scene(tmp_path):
    result = run_notebook(REPO / "notebooks" / "02_train_and_tune.ipynb", tmp_path)
    assert {"mining", "clearing"} <= set(result["labels"]), result
    assert set(result["n_samples"]) == set(result["labels"]) and result["rows"] == sum(result["n_samples"].values())
    assert result["heldout_alerts"] >= 1


def test_there_are_notebooks_for_exploring_and_training():
    assert set(REPORT) == {p.name for p in NOTEBOOKS}, "a new notebook needs its result check here"
