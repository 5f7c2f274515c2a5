"""The research notebooks run top to bottom on small generated scenes (as nbmake would run them).

``python -m pytest --nbmake notebooks`` runs them the same way; this test keeps them in the
default ``python -m pytest`` run of CI.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import REPO

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path: Path, tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=240, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    errors = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors


def test_there_are_notebooks_for_exploring_and_training():
    assert {"01_explore.ipynb", "02_train_and_tune.ipynb"} <= {p.name for p in NOTEBOOKS}
