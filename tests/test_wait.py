"""wait_for_resource answers before common clients give up (60 s), says "not yet, call again" when the
state is not reached, and a second call finishes the wait. A fake clock drives both the wait and the
sandbox, so minutes of waiting take no time and no test depends on how fast the machine is."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from IPython.core.interactiveshell import InteractiveShell
from mcp import Client

from gpu_tools import unified
from gpu_tools.gate import Approve
from gpu_tools.operations import WAIT_DEFAULT_SECONDS
from gpu_tools.sandbox import SandboxServer
from gpu_tools.toolkit import Toolkit
from mcp_server import build_server
from tests.conftest import sandbox_settings
from tests.mcp_helpers import Human, structured

pytestmark = pytest.mark.anyio

CREATE = {"name": "w", "model_name": "openai/gpt-oss-20b", "flavor_name": "base", "gpu_type": "gpu-h100-sxm"}


class FakeClock:
    """Monotonic time that moves only when someone sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def fake_clock(sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeClock]:
    clock = FakeClock()
    monkeypatch.setattr(unified, "clock", clock)
    monkeypatch.setattr(unified, "sleep", clock.sleep)
    monkeypatch.setattr(sandbox.sandbox, "clock", clock)
    sandbox.sandbox.ready_after = 80  # the endpoint needs 80 s to start
    yield clock


async def test_default_wait_answers_within_50s_then_a_second_call_finishes(
    tk: Toolkit, fake_clock: FakeClock
) -> None:
    assert WAIT_DEFAULT_SECONDS <= 50
    created = await tk.call("nebius_create_endpoint", CREATE, confirmer=Approve())
    ref = {"provider": "nebius", "resource_id": created.resource.resource_id}
    start = fake_clock.now

    first = await tk.call("wait_for_resource", ref)
    assert fake_clock.now - start <= 50
    assert first.reached is False and first.status == "pending"
    assert first.waited_seconds <= 50
    assert "call wait_for_resource again" in (first.note or "").lower()

    second = await tk.call("wait_for_resource", ref)
    assert second.reached is True and second.status == "running" and second.note is None
    assert 80 <= fake_clock.now - start <= 80 + 5  # polled every 5 s until ready


async def test_a_longer_timeout_waits_through_in_one_call(tk: Toolkit, fake_clock: FakeClock) -> None:
    created = await tk.call("nebius_create_endpoint", CREATE, confirmer=Approve())
    ref = {"provider": "nebius", "resource_id": created.resource.resource_id}
    done = await tk.call("wait_for_resource", {**ref, "timeout_seconds": 600, "poll_seconds": 10})
    assert done.reached and done.status == "running" and 80 <= done.waited_seconds <= 90


async def test_the_last_sleep_stops_at_the_deadline(tk: Toolkit, fake_clock: FakeClock) -> None:
    created = await tk.call("nebius_create_endpoint", CREATE, confirmer=Approve())
    ref = {"provider": "nebius", "resource_id": created.resource.resource_id}
    result = await tk.call("wait_for_resource", {**ref, "timeout_seconds": 12, "poll_seconds": 5})
    assert not result.reached and fake_clock.slept == [5, 5, 2] and result.waited_seconds == 12


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_mcp_wait_reports_progress_and_not_yet(
    sandbox: SandboxServer, fake_clock: FakeClock, mode: str
) -> None:
    progress: list[str] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append(message or "")

    server = build_server(sandbox_settings(sandbox))
    async with Client(server, elicitation_callback=Human(), mode=mode) as client:  # type: ignore[arg-type]
        created = structured(await client.call_tool("nebius_create_endpoint", CREATE))
        ref = {"provider": "nebius", "resource_id": created["resource"]["resource_id"]}
        first = await client.call_tool("wait_for_resource", ref, progress_callback=on_progress)
        data = structured(first)
        assert data["reached"] is False and data["status"] == "pending"
        text = " ".join(getattr(c, "text", "") for c in first.content)
        assert "call wait_for_resource again" in text.lower()
        assert len(progress) >= 9 and ref["resource_id"] in progress[-1]
        second = structured(await client.call_tool("wait_for_resource", ref))
        assert second["reached"] is True and second["status"] == "running"
        assert second["uri"] == f"gpu://nebius/{ref['resource_id']}"


def test_the_magic_keeps_waiting_unless_given_a_timeout(
    shell: InteractiveShell, fake_clock: FakeClock
) -> None:
    created = shell.run_line_magic(
        "gpu",
        "nebius-create-endpoint --name m --model-name openai/gpt-oss-20b --flavor-name base "
        "--gpu-type gpu-h100-sxm --yes",
    )
    rid = created.resource.resource_id
    start = fake_clock.now
    short = shell.run_line_magic("gpu", f"wait nebius {rid} --timeout-seconds 10")
    assert short.reached is False and "call wait_for_resource again" in short.note.lower()
    done = shell.run_line_magic("gpu", f"wait nebius {rid}")
    assert done.reached is True and done.status == "running"
    assert fake_clock.now - start >= 80
