"""The MCP front: one tool per registry operation, generated, with no per-operation code.

Each tool's parameters are its operation's input fields; annotations come from its effect. A
mutating tool has a hidden resolver parameter that asks the human through elicitation with the
plan's text before the body runs; the body then passes the answer to the core's gate, which
refuses (and journals the refusal) unless the answer was an explicit yes. A client that cannot
elicit is never asked and always refused: fail closed.
"""

from __future__ import annotations

import inspect
import logging
from typing import Annotated, Any

from mcp.server.mcpserver import (
    AcceptedElicitation,
    CancelledElicitation,
    Context,
    DeclinedElicitation,
    Elicit,
    ElicitationResult,
    MCPServer,
    Resolve,
)
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from gpu_tools import __version__
from gpu_tools.errors import ConfirmationRefused, GpuToolsError
from gpu_tools.models import Plan
from gpu_tools.operations import Operation
from gpu_tools.settings import Settings
from gpu_tools.toolkit import Toolkit

log = logging.getLogger("mcp_server")

INSTRUCTIONS = """\
Tools to find, start, use and stop GPU resources at NetMind, Sesterce Cloud, Nebius Token Factory and
NeoLink AI. Start with list_providers and list_offers. Every tool that changes something at a provider
asks the user to confirm a plan (what will be sent, what it costs per hour, whether it can be undone)
before anything is sent; pass dry_run=true to see that plan without asking. Resources cost money while
they run: delete or stop what you start, and check history for anything left behind.
"""

NO_ELICITATION = (
    "not confirmed: this MCP client cannot ask the user for confirmation (it does not support "
    "elicitation), so nothing was sent. Call the tool with dry_run=true to show the user the plan, and "
    "have them run it from a client that supports elicitation or from the %gpu notebook magic."
)


class Confirmation(BaseModel):
    """What the user answers in the confirmation form."""

    confirm: bool = Field(description="Yes, send this request to the provider.")


def can_elicit(ctx: Context) -> bool:
    caps = ctx.client_capabilities
    return caps is not None and caps.elicitation is not None


class ElicitedConfirmer:
    """The gate's confirmer for one MCP call: the answer was already given by elicitation."""

    def __init__(self, answer: ElicitationResult[Confirmation], elicitable: bool) -> None:
        self.answer = answer
        self.elicitable = elicitable

    async def confirm(self, plan: Plan) -> bool:
        if not self.elicitable:
            raise ConfirmationRefused(NO_ELICITATION, provider=plan.provider)
        answer: Any = self.answer
        if isinstance(answer, AcceptedElicitation) and not isinstance(answer.data, Confirmation):
            answer = answer.data  # the resolver's own "not asked" value, wrapped by the framework
        if isinstance(answer, AcceptedElicitation):
            if answer.data.confirm:
                return True
            raise ConfirmationRefused(
                f"the user answered no to: {plan.action} Nothing was sent.", provider=plan.provider
            )
        how = "cancelled" if isinstance(answer, CancelledElicitation) else "declined"
        raise ConfirmationRefused(
            f"the user {how} the confirmation of: {plan.action} Nothing was sent. Ask the user before trying again.",
            provider=plan.provider,
        )


def annotations_for(op: Operation) -> ToolAnnotations:
    read = op.effect == "read"
    return ToolAnnotations(
        title=op.title,
        read_only_hint=read,
        destructive_hint=False if read else op.effect == "destroy",
        idempotent_hint=read or op.effect in ("update", "destroy"),
        open_world_hint=op.open_world,
    )


def _parameters(op: Operation) -> tuple[list[inspect.Parameter], dict[str, Any]]:
    """Keyword parameters mirroring the operation's input model (types, defaults, constraints)."""
    params, hints = [], {}
    for name, field in op.input.model_fields.items():
        annotation = Annotated[(field.annotation, *field.metadata, Field(description=field.description))]  # type: ignore[valid-type]
        default = inspect.Parameter.empty if field.is_required() else field.default
        params.append(
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
        )
        hints[name] = annotation
    return params, hints


def _tool_error(exc: Exception, op: Operation) -> ToolError:
    if isinstance(exc, GpuToolsError):
        return ToolError(str(exc))
    log.exception("unexpected error in %s", op.name)
    return ToolError(f"{op.name} failed unexpectedly ({type(exc).__name__}); the server log has details.")


def make_tool(tk: Toolkit, op: Operation) -> Any:
    """A function MCPServer can register: signature from the input model, body calls the core."""
    params, hints = _parameters(op)
    ctx_param = inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=Context)

    if not op.mutating:

        async def read_tool(ctx: Context, **kwargs: Any) -> Any:
            async def progress(done: float, total: float | None, message: str) -> None:
                await ctx.report_progress(done, total, message)

            try:
                return await tk.call(op.name, kwargs, progress=progress)
            except Exception as exc:
                raise _tool_error(exc, op) from None

        fn = read_tool
        signature = [ctx_param, *params]
        annotations: dict[str, Any] = {"ctx": Context, **hints, "return": op.output}
    else:

        async def ask(ctx: Context, **kwargs: Any) -> Elicit[Confirmation] | DeclinedElicitation:
            # Runs before the body, possibly more than once: no side effects, and the message is a
            # pure function of the arguments (the gate reuses the same plan for the same arguments).
            if kwargs.get("dry_run") or not can_elicit(ctx):
                return DeclinedElicitation()
            plan = await tk.preview(op.name, kwargs)
            if plan is None:
                return DeclinedElicitation()
            return Elicit(plan.message() + "\n\nSend this request?", Confirmation)

        ask.__signature__ = inspect.Signature(
            [ctx_param, *(p.replace(annotation=inspect.Parameter.empty) for p in params)]
        )  # type: ignore[attr-defined]
        ask.__annotations__ = {"ctx": Context, "return": Elicit[Confirmation] | DeclinedElicitation}
        ask.__qualname__ = f"confirm_{op.name}"

        async def mutating_tool(
            ctx: Context,
            confirmation: Annotated[ElicitationResult[Confirmation], Resolve(ask)],
            **kwargs: Any,
        ) -> Any:
            confirmer = ElicitedConfirmer(confirmation, can_elicit(ctx))
            try:
                return await tk.call(op.name, kwargs, confirmer=confirmer)
            except Exception as exc:
                raise _tool_error(exc, op) from None

        fn = mutating_tool
        answer_annotation = Annotated[ElicitationResult[Confirmation], Resolve(ask)]
        answer = inspect.Parameter(
            "confirmation", inspect.Parameter.KEYWORD_ONLY, annotation=answer_annotation
        )
        signature = [ctx_param, answer, *params]
        annotations = {"ctx": Context, "confirmation": answer_annotation, **hints, "return": op.output}

    fn.__signature__ = inspect.Signature(signature, return_annotation=op.output)  # type: ignore[attr-defined]
    fn.__annotations__ = annotations
    fn.__name__ = fn.__qualname__ = op.name
    return fn


def build_server(settings: Settings | None = None, *, toolkit: Toolkit | None = None) -> MCPServer:
    """An MCPServer exposing every registry operation the settings allow (mutations are not even
    registered in read-only mode)."""
    tk = toolkit or Toolkit(settings)
    server = MCPServer(
        name="gpu-tools",
        title="GPU tools" + (" (sandbox)" if tk.settings.sandbox else ""),
        instructions=INSTRUCTIONS
        + ("\nThis server talks to the local SANDBOX, not to real clouds.\n" if tk.settings.sandbox else ""),
        version=__version__,
    )
    for op in tk.operations():
        description = op.description
        if op.mutating:
            description += " Confirmation: the user is asked to approve the plan; refusals send nothing."
        server.add_tool(
            make_tool(tk, op),
            name=op.name,
            title=op.title,
            description=description,
            annotations=annotations_for(op),
            structured_output=True,
        )
    server.toolkit = tk  # type: ignore[attr-defined]
    return server
