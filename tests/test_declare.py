"""A provider declares itself once: a fifth provider, declared here in the tests only, gets its tools,
settings, redaction and sandbox routes from its one declaration; a half-declared one is refused.

This module is also the fifth provider's sandbox module (`routes`, `error`), as the declaration names it.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gpu_tools import errors
from gpu_tools.models import PROVIDER_NAMES, Listing, Offer
from gpu_tools.operations import TOOLSETS, NoInput, Operation, Progress
from gpu_tools.providers import ADAPTERS, PROVIDERS
from gpu_tools.providers.base import Provider
from gpu_tools.providers.declare import HalfDeclared, ProviderSpec, Setting, register, sandbox_env, unregister
from gpu_tools.providers.wire import Wire
from gpu_tools.sandbox import SandboxServer
from gpu_tools.sandbox.state import Sandbox, fastapi_error
from gpu_tools.settings import Settings
from gpu_tools.toolkit import Toolkit
from mcp_server import build_server
from tests.mcp_helpers import structured

ROOT = Path(__file__).resolve().parent.parent


# ---- the fifth provider: a package's worth of code, declared once --------------------------------
class AcmeThing(Wire):
    sku: str
    gpu: str
    hourly: float


class AcmeProvider(Provider):
    def auth_headers(self) -> dict[str, str]:
        return {"x-acme-key": self.credential("acme_api_key")}

    async def list_offers(self, *, refresh: bool = False) -> list[Offer]:
        things = self.parse_list(AcmeThing, await self.http.request("GET", "/things"), "GET /things")
        return [
            Offer(provider=self.name, kind="instance", offer_id=t.sku, gpu_name=t.gpu, usd_per_hour=t.hourly)
            for t in things
        ]


async def _list_things(tk: Any, data: NoInput, progress: Progress | None) -> Listing[Offer]:
    offers = await AcmeProvider.of(tk).list_offers()
    return Listing[Offer](items=offers, total=len(offers))


ACME = ProviderSpec(
    name="acme",
    title="Acme GPUs",
    adapter=AcmeProvider,
    base_url="https://api.acme.test/v1",
    settings=(Setting("acme_api_key", credential=True, secret=True),),
    toolsets={"acme": "list Acme's things"},
    operations=(
        Operation(
            name="acme_list_things",
            title="List Acme things",
            description="List the GPU things Acme rents.",
            input=NoInput,
            output=Listing[Offer],
            effect="read",
            handler=_list_things,
            provider="acme",
        ),
    ),
    sandbox=__name__,
    sandbox_path="/v1",
)


# ---- its sandbox module (this one) ---------------------------------------------------------------
error = fastapi_error


def routes(sb: Sandbox) -> list[Route]:
    async def things(request: Request) -> Response:
        if request.headers.get("x-acme-key") != sb.api_key:
            return error(401, "bad key", request.url.path)
        return JSONResponse([{"sku": "a-h100", "gpu": "H100", "hourly": 2.5}])

    return [Route("/v1/things", things, methods=["GET"])]


@pytest.fixture
def acme() -> Iterator[ProviderSpec]:
    register(ACME)
    try:
        yield ACME
    finally:
        unregister("acme")


@pytest.fixture
def acme_sandbox(acme: ProviderSpec) -> Iterator[SandboxServer]:
    server = SandboxServer(ready_after=0.0).start()
    try:
        yield server
    finally:
        server.stop()


# ---- the fifth provider works everywhere -----------------------------------------------------------
def test_its_settings_come_from_the_environment_and_config(
    acme: ProviderSpec, monkeypatch: pytest.MonkeyPatch, gpu_home: Path
) -> None:
    monkeypatch.setenv("ACME_API_KEY", "acme-key-from-env")
    settings = Settings()
    assert settings.acme_api_key.get_secret_value() == "acme-key-from-env"  # type: ignore[attr-defined]
    assert settings.acme_base_url == "https://api.acme.test/v1"  # type: ignore[attr-defined]
    gpu_home.mkdir(parents=True, exist_ok=True)
    (gpu_home / "config.toml").write_text('acme_base_url = "https://eu.acme.test/v1"\n')
    assert Settings().acme_base_url == "https://eu.acme.test/v1"  # type: ignore[attr-defined]
    sandboxed = Settings().for_sandbox("http://127.0.0.1:9")
    assert sandboxed.acme_base_url == "http://127.0.0.1:9/acme/v1"  # type: ignore[attr-defined]
    assert sandbox_env("http://127.0.0.1:9", "k")["ACME_API_KEY"] == "k"


def test_its_credential_is_redacted_everywhere(acme: ProviderSpec, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(errors, "_known_secrets", {})
    Settings(acme_api_key="acme-secret-0123456789")
    assert (
        errors.redact("the provider said: acme-secret-0123456789 is wrong")
        == "the provider said: *** is wrong"
    )


def test_without_its_credential_it_says_what_to_set(acme: ProviderSpec) -> None:
    tk = Toolkit(Settings())
    with pytest.raises(errors.NotConfigured, match=r"Set ACME_API_KEY \(or acme_api_key in config.toml\)"):
        tk.adapter("acme")
    tk.close()


@pytest.mark.anyio
async def test_its_tools_and_sandbox_routes_through_an_mcp_client(acme_sandbox: SandboxServer) -> None:
    tk = Toolkit(Settings().for_sandbox(acme_sandbox.url))
    assert tk.adapter("acme").capabilities == frozenset({"offers"})
    async with Client(build_server(toolkit=tk)) as client:
        tools = {t.name for t in (await client.list_tools()).tools}
        assert "acme_list_things" in tools
        listed = structured(await client.call_tool("acme_list_things", {}))
        assert [i["offer_id"] for i in listed["items"]] == ["a-h100"]
        offers = structured(await client.call_tool("list_offers", {"provider": "acme"}))
        assert [(o["provider"], o["usd_per_hour"]) for o in offers["items"]] == [("acme", 2.5)]
        providers = structured(await client.call_tool("list_providers", {}))
        assert "acme" in {p["name"] for p in providers["items"]}
    async with httpx.AsyncClient() as http:
        log = (await http.get(f"{acme_sandbox.url}/_sandbox/requests")).json()
    assert [r["path"] for r in log if r["path"].startswith("/acme")] == ["/acme/v1/things", "/acme/v1/things"]
    tk.close()


def test_unregistering_leaves_the_four() -> None:
    assert list(PROVIDERS) == ["nebius", "sesterce", "neolink", "netmind"] == PROVIDER_NAMES == list(ADAPTERS)
    assert "acme" not in TOOLSETS and "acme_api_key" not in Settings.model_fields


# ---- a half-declared provider is refused ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"settings": ()}, "no credential setting"),
        ({"toolsets": {"acme_more": "x"}}, "no tool set named 'acme'"),
        ({"sandbox": ""}, "no sandbox module"),
        ({"name": "nebius"}, "'nebius' is already registered"),
        (
            {"settings": (Setting("acme_key", credential=True, secret=True), Setting("other_url"))},
            "'other_url'",
        ),
        ({"toolsets": {"acme": "x", "acme_admin": "y"}}, "tool set(s) with no operation: acme_admin"),
        ({"operations": ()}, "tool set(s) with no operation: acme"),
    ],
)
def test_a_half_declared_provider_is_refused_naming_what_is_missing(
    change: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(HalfDeclared, match=re.escape(complaint)):
        register(dataclasses.replace(ACME, **change))
    assert "acme" not in PROVIDERS


def test_an_adapter_without_auth_headers_is_refused() -> None:
    class Incomplete(Provider):
        pass

    with pytest.raises(HalfDeclared, match="does not implement auth_headers"):
        register(dataclasses.replace(ACME, adapter=Incomplete))


def test_capabilities_are_the_methods_an_adapter_overrides() -> None:
    with pytest.raises(TypeError, match="both list_resources and get_resource"):

        class OnlyLists(Provider):
            def auth_headers(self) -> dict[str, str]:
                return {}

            async def list_resources(self) -> list[Any]:
                return []

    assert {name: sorted(a.capabilities) for name, a in ADAPTERS.items()} == {
        "nebius": [
            "chat",
            "delete",
            "offers",
            "regions",
            "resources",
            "start",
            "stop",
            "templates",
            "update",
        ],
        "sesterce": ["delete", "offers", "regions", "resources", "start", "stop", "templates", "update"],
        "neolink": ["delete", "offers", "regions", "resources", "start", "stop", "stop_snapshot"],
        "netmind": ["delete", "offers", "regions", "resources", "start", "stop", "templates", "update"],
    }


def test_every_registered_provider_is_whole() -> None:
    """Each of the four: its sandbox module serves it, its settings and tool sets are documented."""
    readme = (ROOT / "README.md").read_text()
    for spec in PROVIDERS.values():
        module = __import__(spec.sandbox, fromlist=["routes"])
        assert callable(module.routes) and callable(module.error), spec.name
        assert spec.title in readme, spec.name
        for setting in spec.credentials:
            assert f"`{setting.name.upper()}`" in readme, setting.name
        assert f"`{spec.name.upper()}_BASE_URL`" in readme, spec.name
        for toolset in spec.toolsets:
            assert f"| `{toolset}` |" in readme, toolset
