"""MCP prompts: playbooks an agent or a person starts from, written with the real tool names and
arguments. Every step that changes something still goes through the tools' confirmation."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from functools import partial
from typing import Annotated, get_args, get_type_hints

from mcp import MCPError
from mcp.server import MCPServer
from mcp.server.mcpserver.prompts.base import Prompt, PromptArgument
from mcp.types import INVALID_PARAMS
from pydantic import Field
from pydantic.fields import FieldInfo

from gpu_tools.models import BILLABLE_KINDS, resource_uri
from gpu_tools.toolkit import Toolkit


def _arg(description: str) -> object:
    return Field(None, description=description)


def playbook(server: MCPServer, fn: Callable[..., str], *, name: str, title: str, description: str) -> None:
    """Register `fn` as a prompt whose arguments are read from its signature (`Annotated[..., _arg(...)]`;
    a `partial`'s bound arguments are not the prompt's): what `server.prompt()` does, without building
    an argument model and its JSON schema at start-up. Every argument is an optional string, as prompt
    arguments are on the wire."""
    hints = get_type_hints(fn.func if isinstance(fn, partial) else fn, include_extras=True)
    arguments = []
    for param in inspect.signature(fn).parameters.values():
        meta = [m for m in get_args(hints[param.name])[1:] if isinstance(m, FieldInfo)]
        arguments.append(
            PromptArgument(
                name=param.name,
                description=meta[0].description if meta else None,
                required=param.default is inspect.Parameter.empty,
            )
        )
    server.add_prompt(Prompt(name=name, title=title, description=description, arguments=arguments, fn=fn))


def _call(tool: str, **args: object) -> str:
    """`tool(a="x", b=2)` with only the arguments given, as the playbooks write tool calls."""
    return f"{tool}({', '.join(f'{k}={json.dumps(v)}' for k, v in args.items() if v is not None)})"


def create_tools(tk: Toolkit) -> list[str]:
    """`name: title` of each tool that creates a billable resource, for the providers in use."""
    out = []
    allowed = tk.settings.allowed_providers
    for op in tk.operations():
        if op.effect != "create" or op.name.rsplit("_", 1)[-1] not in BILLABLE_KINDS:
            continue
        if op.provider and allowed is not None and op.provider not in allowed:
            continue
        out.append(f"- {op.name} ({op.provider}): {op.title}")
    return out


NAMES = ("deploy_cheapest", "clean_up_costs", "check_resource")


def deploy_cheapest(
    tk: Toolkit,
    gpu: Annotated[str | None, _arg("GPU model, e.g. H100 or L40S.")] = None,
    max_usd_per_gpu_hour: Annotated[str | None, _arg("Highest price per GPU-hour in USD.")] = None,
    provider: Annotated[str | None, _arg("Only this provider.")] = None,
    region: Annotated[str | None, _arg("Only this region.")] = None,
    template: Annotated[str | None, _arg("Model template to deploy (see list_templates).")] = None,
    expires_in: Annotated[str | None, _arg("Lifetime, e.g. 2h (default 2h).")] = None,
) -> str:
    try:
        price = float(max_usd_per_gpu_hour) if max_usd_per_gpu_hour else None
    except ValueError:
        raise MCPError(INVALID_PARAMS, "max_usd_per_gpu_hour must be a number, such as 2.5") from None
    steps = [
        "Goal: rent the cheapest GPU offer that fits, run it only as long as needed, test it, and leave "
        "nothing running that costs money. Every change asks the user to confirm a plan first.",
        "",
        "1. Find the offer: "
        + _call(
            "list_offers",
            gpu=gpu,
            max_usd_per_gpu_hour=price,
            provider=provider,
            region=region,
            available_only=True,
        )
        + ". Offers come cheapest per GPU-hour first; take the first that fits and note its provider, "
        "kind, offer_id and usd_per_hour. A provider reported with an error does not hide the others.",
    ]
    if template:
        steps.append(
            f"   Check that template {json.dumps(template)} can run on it: "
            + _call("list_templates", provider=provider)
            + "."
        )
    tools = "\n".join(create_tools(tk)) or "- (none: no provider with credentials offers one)"
    return "\n".join(steps + _create_test_and_delete(tools, expires_in or "2h"))


def _create_test_and_delete(tools: str, lifetime: str) -> list[str]:
    """Steps 2-5 of `deploy_cheapest`: create with an expiry, wait, test, tear down, check the spend."""
    return [
        "2. Create it with the create tool of that provider, passing the offer_id to the argument the "
        "tool's input schema names for the flavor, hardware or SKU:",
        tools,
        "   First call it with dry_run=true and show the user the plan (cost per hour, reversibility). "
        f'Then call it again without dry_run, with expires_in="{lifetime}" and an idempotency_key unique '
        "to this intent, so a retry never creates a second resource. The user is asked to confirm.",
        "3. Wait until it runs: "
        + _call("wait_for_resource", provider="<provider>", resource_id="<resource_id>")
        + ". If it answers reached=false, call it again with the same arguments until reached=true.",
        "4. Test it: for an endpoint, "
        + _call("chat", provider="<provider>", resource_id="<resource_id>", message="Say hello in one line.")
        + "; for a container or instance, "
        + _call("get_resource", provider="<provider>", resource_id="<resource_id>")
        + " and report its URL or address.",
        "5. Tear it down: "
        + _call("delete_resource", provider="<provider>", resource_id="<resource_id>")
        + " (confirmed by the user), then "
        + _call("wait_for_resource", provider="<provider>", resource_id="<resource_id>", until="deleted")
        + ", then "
        + _call("spend")
        + " to show that nothing you started still costs money.",
    ]


def clean_up_costs(provider: Annotated[str | None, _arg("Only this provider.")] = None) -> str:
    return "\n".join(
        [
            "Goal: find everything that costs money now and, with the user, stop or delete what is not "
            "needed. Never stop or delete anything the user has not agreed to.",
            "",
            "1. What runs and what it costs: "
            + _call("spend", provider=provider)
            + ". Show the total per hour and the most expensive resources first.",
            "2. What was forgotten: "
            + _call("find_orphans", provider=provider)
            + " (untracked: live at a provider but not created here; gone: created here, no longer "
            "listed), and "
            + _call("history", outcome="unknown", provider=provider)
            + " for changes whose outcome was never recorded (they may have created something).",
            "3. What has expired: "
            + _call("reap_expired", provider=provider, dry_run=True)
            + " shows the plan; if the user agrees, call it again without dry_run.",
            "4. For each remaining resource the user no longer needs: "
            + _call("stop_resource", provider="<provider>", resource_id="<resource_id>", dry_run=True)
            + " (can be started again) or "
            + _call("delete_resource", provider="<provider>", resource_id="<resource_id>", dry_run=True)
            + " (permanent); show the plan, then call again without dry_run once the user agrees.",
            "5. Finish with " + _call("spend", provider=provider) + " and report what still costs money.",
        ]
    )


def check_resource(
    provider: Annotated[str, Field(description="The provider that holds it.")],
    resource_id: Annotated[str, Field(description="Its resource_id, as list_resources gives it.")],
) -> str:
    ref = {"provider": provider, "resource_id": resource_id}
    return "\n".join(
        [
            f"Goal: tell the user how {resource_id} at {provider} is doing and what it costs.",
            "",
            f"1. Its state: {_call('get_resource', **ref)} (also readable as the MCP resource "
            f"{resource_uri(provider, resource_id)}).",
            f"2. If it is pending: {_call('wait_for_resource', **ref)}; if it answers reached=false, call "
            "it again with the same arguments.",
            f"3. If it is a running endpoint: {_call('chat', **ref, message='Say hello in one line.')}.",
            f"4. Its cost: {_call('spend', provider=provider)}; report its usd_per_hour and accrued_usd, "
            "and when it expires.",
        ]
    )


def add_prompts(server: MCPServer, tk: Toolkit) -> set[str]:
    """Register the playbooks; returns their names (for completions)."""
    playbook(
        server,
        partial(deploy_cheapest, tk),
        name="deploy_cheapest",
        title="Deploy the cheapest fitting GPU, test it, tear it down",
        description="Find the cheapest offer that fits, create it with an expiry after the user confirms, "
        "wait until it runs, test it, then delete it and check that nothing is left costing money.",
    )
    playbook(
        server,
        clean_up_costs,
        name="clean_up_costs",
        title="Find and clean up what costs money now",
        description="Show what runs and what it costs, find forgotten and expired resources, and stop or "
        "delete what the user no longer needs, each after confirmation.",
    )
    playbook(
        server,
        check_resource,
        name="check_resource",
        title="Check one resource",
        description="Read one resource's state and cost, wait for it if it is starting, and test it.",
    )
    return set(NAMES)
