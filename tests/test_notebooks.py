"""The notebooks as a reader on a code host sees them: committed with the outputs of a full
run, figures included, and figures that do show when a notebook runs.

The notebooks themselves are executed in quick mode by nbmake (`pytest notebooks/`, which
does not write outputs back); these tests check the committed files and that a kernel
importing kcourse still draws its figures inline.
"""
import base64
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def outputs(nb):
    return [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]


def png_outputs(nb):
    return [o for o in outputs(nb) if "image/png" in o.get("data", {})]


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 5, [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_notebook_has_full_run_outputs(path):
    """Every code cell ran (in order), at least one figure is stored as a PNG, no cell
    failed, and the outputs are those of a full run, not of the test suite's quick mode."""
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]
    counts = [c.get("execution_count") for c in code]
    assert None not in counts, f"{path.name}: cells never executed (outputs not committed?)"
    assert counts == sorted(counts), f"{path.name}: cells executed out of order: {counts}"
    errors = [o for o in outputs(nb) if o.output_type == "error"]
    assert not errors, f"{path.name}: {[(o.ename, o.evalue) for o in errors]}"
    pngs = png_outputs(nb)
    assert pngs, f"{path.name} has no image/png output"
    for o in pngs:
        assert base64.b64decode(o["data"]["image/png"]).startswith(PNG_MAGIC)
    text = "".join(o.get("text", "") for o in outputs(nb) if o.output_type == "stream")
    assert "full run" in text and "quick mode" not in text, \
        f"{path.name}: the committed outputs are not those of a full run"


def test_a_notebook_importing_kcourse_shows_its_figures(tmp_path):
    """Executes a two-cell notebook through a real kernel: kcourse (plots, data, training:
    what the notebooks import) must leave the inline backend alone, so that a pyplot figure
    and a kcourse.plots PNG shown with plt both come back as image/png outputs."""
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "import matplotlib.pyplot as plt\n"
            "import numpy as np\n"
            "import kcourse.data, kcourse.training\n"
            "from kcourse import plots\n"
            "fig, ax = plt.subplots(figsize=(3, 2))\n"
            "ax.plot([0, 1, 2], [1, 0, 1])"),
        nbformat.v4.new_code_cell(
            "path = plots.plot_confusion(np.array([0, 1, 1]), np.array([0, 1, 0]), ['a', 'b'],\n"
            "                            'confusion.png')\n"
            "plt.figure(figsize=(3, 3)); plt.imshow(plt.imread(path)); plt.axis('off');"),
    ]
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    assert (tmp_path / "confusion.png").is_file()
    for i, cell in enumerate(nb.cells):
        assert not [o for o in cell.outputs if o.output_type == "error"]
        pngs = [o for o in cell.outputs if "image/png" in o.get("data", {})]
        assert len(pngs) == 1, f"cell {i}: {[o.output_type for o in cell.outputs]}"
        assert base64.b64decode(pngs[0]["data"]["image/png"]).startswith(PNG_MAGIC)
