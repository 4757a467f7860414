"""MCP resources: the journal, spend, the providers, and every GPU resource by its `gpu://` URI.

Each resource is a read the registry already has (history, spend, list_providers, get_resource),
served as JSON through the toolkit, so policy and secret masking are the tools' own. `resources/list`
names the fixed ones and every resource the journal says this server created and has not deleted;
the template `gpu://{provider}/{resource_id}` reads any resource a provider holds, and its URI is
the `uri` field of tool results that mention a resource.
"""

from __future__ import annotations

from typing import Any

from mcp import types
from mcp.server import MCPServer
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError
from pydantic import BaseModel

from gpu_tools.errors import GpuToolsError, InvalidInput, NotFound, PolicyRefused
from gpu_tools.models import URI_SCHEME
from gpu_tools.toolkit import Toolkit

JSON = "application/json"
RESOURCE_TEMPLATE = f"{URI_SCHEME}://{{provider}}/{{resource_id}}"
JOURNAL_ENTRIES = 50


def as_json(result: BaseModel) -> str:
    return result.model_dump_json(exclude_none=True)


async def read(tk: Toolkit, operation: str, args: dict[str, Any]) -> str:
    """A read operation's result as JSON; its typed errors as resource errors the client can read."""
    try:
        return as_json(await tk.call(operation, args))
    except (NotFound, InvalidInput, PolicyRefused) as exc:
        raise ResourceNotFoundError(str(exc)) from None
    except GpuToolsError as exc:
        raise ResourceError(str(exc)) from None


class LiveResources:
    """Middleware adding the journal's live resources to every `resources/list` answer (the SDK's
    own list holds only resources fixed at start-up)."""

    def __init__(self, tk: Toolkit) -> None:
        self.tk = tk

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        result = await call_next(ctx)
        if ctx.method != "resources/list" or (ctx.params or {}).get("cursor"):
            return result
        listed = await self.tk.journal.aio.run(self.listed)
        if isinstance(result, types.ListResourcesResult):
            result.resources.extend(listed)
        elif isinstance(result, dict) and isinstance(result.get("resources"), list):  # the wire form
            result["resources"].extend(
                r.model_dump(by_alias=True, mode="json", exclude_none=True) for r in listed
            )
        return result

    def listed(self) -> list[types.Resource]:
        allowed = self.tk.settings.allowed_providers
        return [
            types.Resource(
                uri=entry.uri or "",
                name=f"{entry.provider}/{entry.resource_id}",
                title=f"{entry.kind or 'endpoint'} {entry.name or entry.resource_id} at {entry.provider}",
                description=f"Live {entry.kind or 'endpoint'} created {entry.created_at}"
                + (f" at about ${entry.usd_per_hour:g}/hour" if entry.usd_per_hour is not None else "")
                + (f", expires {entry.expires_at}" if entry.expires_at else "")
                + ". Reading it asks the provider for its current state.",
                mime_type=JSON,
            )
            for entry in self.tk.journal.live()
            if entry.uri and (allowed is None or entry.provider in allowed)
        ]


def add_resources(server: MCPServer, tk: Toolkit) -> None:
    @server.resource(
        f"{URI_SCHEME}://journal",
        name="journal",
        title="Journal of changes",
        description=f"The {JOURNAL_ENTRIES} most recent changes this tool attempted at a provider, newest "
        "first: plan, cost, outcome (ok, failed, refused, unknown) and the resource made. The same as the "
        "history tool.",
        mime_type=JSON,
    )
    async def journal() -> str:
        return await read(tk, "history", {"limit": JOURNAL_ENTRIES})

    @server.resource(
        f"{URI_SCHEME}://spend",
        name="spend",
        title="What is running and what it costs",
        description="Every live resource across providers with its cost per hour now and since creation, "
        "totals per provider and overall. The same as the spend tool; reading it asks the providers.",
        mime_type=JSON,
    )
    async def spend() -> str:
        return await read(tk, "spend", {})

    @server.resource(
        f"{URI_SCHEME}://providers",
        name="providers",
        title="GPU providers",
        description="The providers this server knows, whether each has credentials, and what each can do.",
        mime_type=JSON,
    )
    async def providers() -> str:
        return await read(tk, "list_providers", {})

    @server.resource(
        RESOURCE_TEMPLATE,
        name="gpu-resource",
        title="One GPU resource",
        description="An endpoint, container or instance at a provider, as get_resource returns it (secrets "
        "masked): status, GPU, replicas, URL. resource_id is percent-encoded; list_resources and "
        "resources/list give whole URIs.",
        mime_type=JSON,
    )
    async def resource(provider: str, resource_id: str) -> str:
        return await read(tk, "get_resource", {"provider": provider, "resource_id": resource_id})

    server.middleware.append(LiveResources(tk))
