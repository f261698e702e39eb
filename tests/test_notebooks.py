"""The notebooks run, top to bottom, on the data they ship with (nbclient, a fresh kernel each).

A notebook that needs the shared real data raises `SkipNotebook` in its first cell when the data
is absent; that becomes a skip here, with the notebook's own reason.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
SKIP = "SkipNotebook"


@pytest.mark.slow
@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.stem)
def test_notebook_runs(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    try:
        client.execute()
    except CellExecutionError as exc:
        if exc.ename == SKIP:
            pytest.skip(f"{path.name}: {exc.evalue}")
        raise
    errors = [
        output
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    ]
    assert errors == []


@pytest.mark.slow
def test_real_data_notebook_skips_cleanly_without_the_data(tmp_path: Path) -> None:
    (path,) = NOTEBOOKS.glob("01_*.ipynb")
    elsewhere = tmp_path / "checkout" / "notebooks"  # no ../shared beside this "checkout"
    elsewhere.mkdir(parents=True)
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(elsewhere)}},
    )
    with pytest.raises(CellExecutionError) as caught:
        client.execute()
    assert caught.value.ename == SKIP
    assert "real data not found" in caught.value.evalue
    ran = [cell for cell in notebook.cells if cell.cell_type == "code" and cell.outputs]
    assert len(ran) == 1, "only the first cell may run"


def test_notebooks_are_stored_without_outputs() -> None:
    """Outputs are produced by running them: stored ones would go stale and bloat diffs."""
    paths = sorted(NOTEBOOKS.glob("*.ipynb"))
    assert len(paths) >= 3
    for path in paths:
        notebook = nbformat.read(path, as_version=4)
        nbformat.validate(notebook)
        for cell in notebook.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, path.name
