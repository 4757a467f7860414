"""Core behaviour: retries, the journal's intent/outcome rows, idempotency, policy, settings, secrets."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import httpx
import pytest
import respx

from gpu_tools import errors
from gpu_tools.gate import Approve, Refuse
from gpu_tools.http import ProviderHTTP
from gpu_tools.sandbox import SandboxServer
from gpu_tools.settings import Settings
from gpu_tools.toolkit import Toolkit, registry
from tests.conftest import fetch_log, mutating_requests, sandbox_settings

pytestmark = pytest.mark.anyio

CREATE = {"name": "c", "model_name": "openai/gpt-oss-20b", "flavor_name": "base", "gpu_type": "gpu-h100-sxm"}


# ---- http ---------------------------------------------------------------------------------------
def client(sleeps: list[float], retries: int = 3) -> ProviderHTTP:
    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    return ProviderHTTP(
        "p", "https://api.example.test", {"Authorization": "Bearer k"}, retries=retries, sleep=sleep
    )


async def test_get_is_retried_on_503_and_429_honouring_retry_after() -> None:
    sleeps: list[float] = []
    with respx.mock(base_url="https://api.example.test") as api:
        route = api.get("/x").mock(
            side_effect=[
                httpx.Response(503),
                httpx.Response(429, headers={"Retry-After": "2"}),
                httpx.Response(200, json={"ok": True}),
            ]
        )
        assert await client(sleeps).request("GET", "/x") == {"ok": True}
    assert route.call_count == 3 and sleeps == [0.25, 2.0]


async def test_get_gives_up_after_bounded_retries() -> None:
    sleeps: list[float] = []
    with respx.mock(base_url="https://api.example.test") as api:
        route = api.get("/x").respond(502, json={"message": "bad gateway"})
        with pytest.raises(errors.ProviderUnavailable, match="bad gateway"):
            await client(sleeps, retries=2).request("GET", "/x")
    assert route.call_count == 3 and sleeps == [0.25, 0.5]


async def test_long_retry_after_is_reported_not_waited() -> None:
    sleeps: list[float] = []
    with respx.mock(base_url="https://api.example.test") as api:
        api.get("/x").respond(429, headers={"Retry-After": "600"}, json={"detail": "quota"})
        with pytest.raises(errors.RateLimited) as info:
            await client(sleeps).request("GET", "/x")
    assert sleeps == [] and info.value.retry_after == 600


async def test_post_is_never_retried() -> None:
    sleeps: list[float] = []
    with respx.mock(base_url="https://api.example.test") as api:
        route = api.post("/x").respond(503)
        with pytest.raises(errors.OutcomeUnknown, match="may have reached"):
            await client(sleeps).request("POST", "/x", json_body={})
        api.post("/y").mock(side_effect=httpx.ConnectError("refused"))
        with pytest.raises(errors.ProviderUnavailable, match="could not reach"):
            await client(sleeps).request("POST", "/y", json_body={})
    assert route.call_count == 1 and sleeps == []


async def test_connect_errors_on_get_are_retried() -> None:
    sleeps: list[float] = []
    with respx.mock(base_url="https://api.example.test") as api:
        api.get("/x").mock(side_effect=[httpx.ConnectError("refused"), httpx.Response(200, json=[1])])
        assert await client(sleeps).request("GET", "/x") == [1]
    assert sleeps == [0.25]


# ---- gate and journal ---------------------------------------------------------------------------
async def test_refusal_is_journaled_and_sends_nothing(tk: Toolkit, sandbox: SandboxServer) -> None:
    with pytest.raises(errors.ConfirmationRefused, match="Nothing was sent"):
        await tk.call("nebius_create_endpoint", CREATE, confirmer=Refuse())
    with pytest.raises(errors.ConfirmationRefused):
        await tk.call("nebius_create_endpoint", CREATE)  # no confirmer: fail closed
    assert mutating_requests(sandbox) == []
    rows, total = tk.journal.entries()
    assert total == 2 and {r.outcome for r in rows} == {"refused"}
    assert rows[0].method == "POST" and rows[0].body["name"] == "c"


async def test_a_crash_after_sending_leaves_an_unknown_row(tk: Toolkit, sandbox: SandboxServer) -> None:
    adapter = tk.adapter("nebius")
    real = adapter.http.request

    sent = asyncio.Event()

    async def hang_on_post(method: str, *args: object, **kwargs: object) -> object:
        if method == "POST":  # the create was sent; its answer never comes back
            sent.set()
            await asyncio.sleep(3600)
        return await real(method, *args, **kwargs)  # type: ignore[arg-type]

    adapter.http.request = hang_on_post  # type: ignore[method-assign]
    task = asyncio.create_task(tk.call("nebius_create_endpoint", CREATE, confirmer=Approve()))
    await asyncio.wait_for(sent.wait(), 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    history = await tk.call("history", {})
    assert [e.outcome for e in history.items] == ["unknown"]


async def test_idempotency_key_replays_instead_of_creating_twice(tk: Toolkit, sandbox: SandboxServer) -> None:
    args = {**CREATE, "idempotency_key": "run-42"}
    first = await tk.call("nebius_create_endpoint", args, confirmer=Approve())
    again = await tk.call("nebius_create_endpoint", args, confirmer=Refuse())
    assert again.outcome == "replayed"
    assert again.resource.resource_id == first.resource.resource_id
    assert len([r for r in mutating_requests(sandbox) if r["method"] == "POST"]) == 1
    assert len((await tk.call("list_resources", {})).items) == 1


async def test_policy_caps_refuse_before_asking(sandbox: SandboxServer) -> None:
    asked: list[str] = []

    class Recorder:
        async def confirm(self, plan: object) -> bool:
            asked.append("asked")
            return True

    for overrides, rule in (
        ({"max_gpus": 1}, "max_gpus"),
        ({"max_usd_per_hour": 5.0}, "max_usd_per_hour"),  # Nebius cost is unknown: refused under a cap
        ({"allowed_providers": ["netmind"]}, "allowed_providers"),
        ({"read_only": True}, "read_only"),
    ):
        tk = Toolkit(sandbox_settings(sandbox, **overrides))
        with pytest.raises(errors.PolicyRefused, match=rule):
            await tk.call("nebius_create_endpoint", {**CREATE, "max_replicas": 2}, confirmer=Recorder())
        tk.close()
    assert asked == [] and mutating_requests(sandbox) == []


async def test_dry_run_shows_policy_verdict(sandbox: SandboxServer) -> None:
    tk = Toolkit(sandbox_settings(sandbox, max_gpus=1))
    result = await tk.call("nebius_create_endpoint", {**CREATE, "max_replicas": 3, "dry_run": True})
    assert result.outcome == "dry_run"
    assert any("max_gpus" in w for w in result.plan.warnings)
    tk.close()


async def test_unknown_operation_and_bad_input_are_clear(tk: Toolkit) -> None:
    with pytest.raises(errors.UnknownOperation, match="no operation named 'launch'"):
        await tk.call("launch", {})
    with pytest.raises(errors.InvalidInput, match="provider must be one of"):
        await tk.call("get_resource", {"provider": "aws", "resource_id": "x"})
    with pytest.raises(errors.InvalidInput, match="unknown argument 'bogus'"):
        await tk.call("list_offers", {"bogus": 1})
    with pytest.raises(errors.InvalidInput, match="at least one of"):
        await tk.call("update_resource", {"provider": "nebius", "resource_id": "x"}, confirmer=Approve())


async def test_unconfigured_provider_says_how_to_configure(gpu_home: Path) -> None:
    tk = Toolkit(Settings())
    with pytest.raises(errors.NotConfigured, match="NEBIUS_API_KEY"):
        await tk.call("list_resources", {"provider": "nebius"})
    listing = await tk.call("list_resources", {})
    assert listing.items == [] and {p.status for p in listing.providers} == {"not_configured"}
    tk.close()


async def test_wait_answers_not_yet_with_a_hint(tk: Toolkit, sandbox: SandboxServer) -> None:
    sandbox.sandbox.ready_after = 60
    created = await tk.call("nebius_create_endpoint", CREATE, confirmer=Approve())
    ref = {"provider": "nebius", "resource_id": created.resource.resource_id}
    result = await tk.call("wait_for_resource", {**ref, "timeout_seconds": 0.3, "poll_seconds": 0.1})
    assert result.reached is False and result.status == "pending"
    assert "Call wait_for_resource again" in (result.note or "")


async def test_fan_out_reports_each_provider(tk: Toolkit, sandbox: SandboxServer) -> None:
    httpx.post(f"{sandbox.url}/_sandbox/faults", json={"provider": "nebius", "status": 500})
    listing = await tk.call("list_offers", {})
    nebius = next(p for p in listing.providers if p.provider == "nebius")
    assert nebius.status == "error" and "HTTP 500" in (nebius.message or "")


async def test_secrets_never_reach_results_journal_or_logs(
    sandbox: SandboxServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    key = "planted-nebius-key-7f3a9"
    sandbox.sandbox.api_key = key
    try:
        settings = (
            Settings(nebius_api_key=key).for_sandbox(sandbox.url).model_copy(update={"nebius_api_key": None})
        )
        settings = settings.model_copy(update={"nebius_api_key": Settings(nebius_api_key=key).nebius_api_key})
        tk = Toolkit(settings)
        outputs = [await tk.call("list_offers", {})]
        created = await tk.call("nebius_create_endpoint", CREATE, confirmer=Approve())
        outputs.append(created)
        outputs.append(await tk.call("history", {}))
        with pytest.raises(errors.ConfirmationRefused) as refused:
            await tk.call(
                "delete_resource", {"provider": "nebius", "resource_id": created.resource.resource_id}
            )
        text = " ".join(o.model_dump_json() for o in outputs) + str(refused.value) + repr(settings)
        text += json.dumps(fetch_log(sandbox)) + caplog.text
        text += Path(settings.resolved_journal_path()).read_bytes().decode(errors="replace")
        assert key not in text
        tk.close()
    finally:
        sandbox.sandbox.api_key = "sandbox-key"


def test_settings_from_toml_file_and_env(gpu_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gpu_home.mkdir(parents=True, exist_ok=True)
    (gpu_home / "config.toml").write_text('nebius_api_key = "from-file"\nmax_gpus = 4\nread_only = true\n')
    s = Settings()
    assert s.nebius_api_key.get_secret_value() == "from-file" and s.max_gpus == 4 and s.read_only
    monkeypatch.setenv("NEBIUS_API_KEY", "from-env")
    monkeypatch.setenv("GPU_TOOLS_MAX_GPUS", "2")
    s = Settings()
    assert s.nebius_api_key.get_secret_value() == "from-env" and s.max_gpus == 2
    assert s.resolved_journal_path() == gpu_home / "journal.sqlite3"
    assert "from-env" not in repr(s)


def test_registry_names_are_unique_and_effects_valid() -> None:
    ops = list(registry())
    assert len({op.name for op in ops}) == len(ops)
    for op in ops:
        assert op.effect in ("read", "create", "update", "destroy")
        assert (op.handler is not None) == (op.effect == "read") == (op.planner is None), op.name
        assert len(op.description) > 40, op.name
        if op.effect == "create":
            assert "_create_" in op.name and "idempotency_key" in op.input.model_fields, op.name
        if op.mutating:
            assert "dry_run" in op.input.model_fields, op.name


def test_sandbox_enforces_auth_and_logs_masked(sandbox: SandboxServer) -> None:
    r = httpx.get(f"{sandbox.url}/nebius/v0/dedicated_endpoints")
    assert r.status_code == 401 and r.json() == {"detail": "Not authenticated"}
    r = httpx.get(f"{sandbox.url}/nebius/v0/dedicated_endpoints", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401
    r = httpx.post(
        f"{sandbox.url}/nebius/v0/dedicated_endpoints",
        headers={"Authorization": "Bearer sandbox-key"},
        json={"name": "x"},
    )
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "model_name"]
    log = fetch_log(sandbox)
    assert log[-1]["body"] == {"name": "x"} and log[-1]["headers"]["authorization"] == "Bearer ***"
    r = httpx.post(
        f"{sandbox.url}/nebius/v0/dedicated_endpoints",
        headers={"Authorization": "bearer sandbox-key", "Content-Type": "application/json"},
        content=b"{not json",
    )
    assert r.status_code == 422 and r.json()["detail"] == [
        {"loc": ["body"], "msg": "JSON decode error", "type": "json_invalid"}
    ]


def test_sandbox_faults_and_latency(sandbox: SandboxServer) -> None:
    headers = {"Authorization": "Bearer sandbox-key"}
    httpx.post(f"{sandbox.url}/_sandbox/faults", json={"provider": "nebius", "status": 503, "count": 1})
    assert httpx.get(f"{sandbox.url}/nebius/v0/dedicated_endpoints", headers=headers).status_code == 503
    assert httpx.get(f"{sandbox.url}/nebius/v0/dedicated_endpoints", headers=headers).status_code == 200
    httpx.post(f"{sandbox.url}/_sandbox/faults", json={"provider": "nebius", "latency": 0.2})
    r = httpx.get(f"{sandbox.url}/nebius/v0/dedicated_endpoints", headers=headers)
    assert r.elapsed.total_seconds() >= 0.2


def test_a_journal_written_by_the_previous_version_is_upgraded_in_place(tmp_path: Path) -> None:
    """The schema the first release wrote (no version, no approvals), with a live endpoint in it."""
    import sqlite3

    from gpu_tools.journal import SCHEMA_VERSION, SqliteJournal

    path = tmp_path / "journal.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(
            """
            CREATE TABLE journal (id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, provider TEXT NOT NULL,
                operation TEXT NOT NULL, effect TEXT NOT NULL, target TEXT NOT NULL, method TEXT, path TEXT,
                body TEXT, usd_per_hour REAL, outcome TEXT NOT NULL, error TEXT, resource_id TEXT, result TEXT,
                idempotency_key TEXT, sandbox INTEGER NOT NULL DEFAULT 0);
            CREATE INDEX journal_key ON journal (idempotency_key);
            INSERT INTO journal (at, provider, operation, effect, target, method, path, usd_per_hour, outcome,
                resource_id, idempotency_key)
            VALUES ('2026-11-01T10:00:00+00:00', 'nebius', 'nebius_create_endpoint', 'create', 'old', 'POST',
                '/v0/dedicated_endpoints', 2.5, 'ok', 'dep-old', 'k-old');
            """
        )
    journal = SqliteJournal(path)
    assert journal.schema_version() == SCHEMA_VERSION
    [entry] = journal.live()
    assert (entry.resource_id, entry.usd_per_hour, entry.outcome) == ("dep-old", 2.5, "ok")
    assert journal.find_key("nebius", "nebius_create_endpoint", "k-old") is not None
    rows, total = journal.entries()
    assert total == 1 and rows[0].target == "old"
    journal.close()
    assert SqliteJournal(path).schema_version() == SCHEMA_VERSION  # a second open changes nothing


def test_a_short_state_key_is_refused_without_being_echoed() -> None:
    from pydantic import ValidationError

    from gpu_tools.settings import Settings

    with pytest.raises(ValidationError, match="http_state_key") as refused:
        Settings(http_state_key="short-secret-value")
    assert "short-secret-value" not in str(refused.value)


def test_the_journal_urls_password_is_a_secret() -> None:
    from gpu_tools.errors import redact
    from gpu_tools.journal import display_url

    url = "postgresql://gpu:s3cret-pw-91@db.internal:5432/journal"
    settings = Settings(journal_url=url)
    assert "s3cret-pw-91" not in repr(settings)
    assert "s3cret-pw-91" not in redact(f"could not connect to {url}")
    assert display_url(url) == "postgresql://gpu:***@db.internal:5432/journal"
    assert settings.journal_target() == url
