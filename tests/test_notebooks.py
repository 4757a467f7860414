"""The example notebooks, executed with nbclient against the sandbox; any error output fails."""

from __future__ import annotations

import re
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
    charts = [c for c in nb.cells if "chart" in c.get("metadata", {}).get("tags", [])]
    assert charts, f"{path.name} shows no chart"
    for cell in charts:  # every chart cell draws a picture
        assert any("image/png" in o.get("data", {}) for o in cell.get("outputs", [])), cell.source
    if path.name == "gpu-market.ipynb":
        assert len(charts) == 3  # offers, price history, spend over time
        # the sandbox moved Sesterce's H100 prices between two fetches: two steps per offer
        history = next(c for c in nb.cells if c.source.startswith("prices = %gpu prices"))
        shown = "".join(o.get("data", {}).get("text/plain", "") for o in history.outputs)
        steps: dict[str, list[float]] = {}
        for line in shown.splitlines():
            row = re.match(r"\S+ \S+\s+sesterce\s+(H100 ×\d\s+\S+)\s+(\$[\d.]+)", line)
            if row:
                steps.setdefault(row.group(1), []).append(float(row.group(2)[1:]))
        assert steps and all(len(prices) == 2 and prices[0] < prices[1] for prices in steps.values()), shown
        assert "Nothing has expired." in text
        created = [o for c in nb.cells for o in c.get("outputs", []) if "neolink" in o.get("text", "")]
        assert any("Done:" in o["text"] and "H100" in o["text"] for o in created)
    if path.name == "quickstart.ipynb":
        assert "You said: Say hello to the notebook" in text
        assert "No resources found." in text  # the endpoint is gone at the end
        assert "<caption" in "".join(
            o.get("data", {}).get("text/html", "") for c in nb.cells for o in c.get("outputs", [])
        )


def test_wait_leaves_a_final_line_in_jupyter(gpu_home: Path) -> None:
    """%gpu wait's live line ends as what was reached and how long it took."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("%load_ext ipython_ext\n%gpu sandbox --fresh --ready-after 2"),
        nbformat.v4.new_code_cell(
            "ep = %gpu nebius-create-endpoint --name w --model-name openai/gpt-oss-20b --flavor-name base "
            "--gpu-type gpu-h100-sxm --yes"
        ),
        nbformat.v4.new_code_cell("%gpu wait nebius {ep.resource.resource_id} --poll-seconds 0.2"),
    ]
    NotebookClient(nb, timeout=60, kernel_name="python3").execute()
    lines = [o["data"]["text/html"] for o in nb.cells[2].outputs if o["output_type"] == "display_data"]
    assert lines and re.fullmatch(
        r"<code>nebius dep-\w+: running \(\w+\), reached after \ds\.</code>", lines[0]
    ), lines


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
    # shown, then left as one final line (the display is updated in place, so nbclient keeps the last)
    assert progress and re.fullmatch(
        r"<code>4 provider\(s\) answered in \d+s\.</code>", progress[0]["data"]["text/html"]
    ), progress[0]["data"]
    assert outputs[-1]["data"]["text/plain"] != "0"


def test_readme_notebook_snippet_runs_as_pasted(gpu_home: Path) -> None:
    """The README's first notebook cell, pasted as one cell, runs against the sandbox and draws the
    price chart."""
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    section = readme.split("### First steps", 1)[1]
    snippet = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert "%gpu sandbox" in snippet and "offers.plot()" in snippet
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(snippet)]
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    outputs = nb.cells[0].outputs
    assert not [o for o in outputs if o["output_type"] == "error"], outputs
    text = "".join(o.get("text", "") for o in outputs)
    assert "SANDBOX: every provider is emulated" in text and "Done: Delete Nebius" in text
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the price chart
