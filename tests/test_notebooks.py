"""The example notebooks, executed with nbclient against the sandbox; any error output fails."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_clean(path: Path, gpu_home: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            assert output["output_type"] != "error", (
                f"{path.name}: {output.get('ename')}: {output.get('evalue')}"
            )
            if output["output_type"] == "stream" and output["name"] == "stderr":
                assert "Traceback" not in output["text"], output["text"]
    text = "\n".join(
        o.get("text", "") or o.get("data", {}).get("text/plain", "")
        for c in nb.cells
        for o in c.get("outputs", [])
    )
    assert "[SANDBOX]" in text
    if path.name == "gpu-market.ipynb":
        images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
        assert len(images) == 1  # the bar chart
        assert "Nothing has expired." in text
        created = [o for c in nb.cells for o in c.get("outputs", []) if "neolink" in o.get("text", "")]
        assert any("Done:" in o["text"] and "H100" in o["text"] for o in created)
    if path.name == "quickstart.ipynb":
        assert "You said: Say hello to the notebook" in text
        assert "No resources found." in text  # the endpoint is gone at the end
        assert "<caption" in "".join(
            o.get("data", {}).get("text/html", "") for c in nb.cells for o in c.get("outputs", [])
        )


def test_slow_read_shows_live_progress_in_jupyter(gpu_home: Path) -> None:
    """A read slower than a second shows which providers answered, updated in place, then cleared."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("%load_ext ipython_ext\n%gpu sandbox"),
        nbformat.v4.new_code_cell(
            "from gpu_tools.sandbox.state import Fault\n"
            "get_ipython()._gpu_magics.sandbox.sandbox.faults['sesterce'] = Fault(latency=2.0)"
        ),
        nbformat.v4.new_code_cell("r = %gpu list-offers --refresh --gpu H100\nlen(r)"),
    ]
    NotebookClient(nb, timeout=60, kernel_name="python3").execute()
    outputs = nb.cells[2].outputs
    progress = [o for o in outputs if o["output_type"] == "display_data"]
    assert progress and progress[0]["data"]["text/html"] == "<code></code>"  # shown, then cleared
    assert outputs[-1]["data"]["text/plain"] != "0"
