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
import re
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
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolResult, InputRequiredResult, ToolAnnotations
from pydantic import BaseModel, Field, StrictBool

from gpu_tools import __version__
from gpu_tools.errors import ConfirmationRefused, GpuToolsError
from gpu_tools.models import Plan
from gpu_tools.operations import Operation
from gpu_tools.settings import Settings
from gpu_tools.toolkit import Toolkit
from mcp_server.completions import add_completions
from mcp_server.prompts import add_prompts
from mcp_server.resources import RESOURCE_TEMPLATE, add_resources

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
    """What the user answers in the confirmation form: yes is the boolean true, nothing else."""

    confirm: StrictBool = Field(description="Yes, send this request to the provider.")


def can_elicit(ctx: Context) -> bool:
    """Whether the client can show a form: a bare `elicitation: {}` means form; URL-only does not."""
    caps = ctx.client_capabilities
    elicitation = caps.elicitation if caps is not None else None
    return elicitation is not None and (elicitation.form is not None or elicitation.url is None)


def resuming(ctx: Context) -> bool:
    """A later round of a multi-round call (2026-07-28): the client answers an earlier question."""
    return ctx.request_state is not None or bool(ctx.input_responses)


class GpuServer(MCPServer):
    """MCPServer that sees each call's raw arguments before the SDK's own validation (which drops
    unknown ones): unknown or invalid arguments are refused in one short sentence per field, and a
    mutating call that fails anywhere before its body (a malformed answer, a failing or URL-only
    client) is journaled as a refusal with a message the model can read."""

    toolkit: Toolkit

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context | None = None
    ) -> CallToolResult | InputRequiredResult:
        tk = self.toolkit
        try:
            op = tk.registry.get(name)
        except GpuToolsError:
            return await super().call_tool(name, arguments, context)
        try:
            op.parse(arguments)
        except GpuToolsError as exc:
            if op.mutating:
                await tk.gate.journal_refusal(op, arguments, f"invalid input: {exc}")
            raise ToolError(f"{exc} Nothing was sent.") from None
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            if not op.mutating or _raised_by_gate(exc):
                raise
            reason = str(exc).removeprefix(f"Error executing tool {name}: ")
            reason = re.sub(r"^Resolver '[^']*':?\s*", "", reason)
            reason = reason[:1].lower() + reason[1:]
            await tk.gate.journal_refusal(op, arguments, f"the confirmation failed: {reason}")
            raise ToolError(
                f"not confirmed: the client's answer to the confirmation could not be used ({reason}). "
                "Nothing was sent."
            ) from None
        except MCPError as exc:
            if not op.mutating:
                raise
            await tk.gate.journal_refusal(op, arguments, f"the client could not ask the user: {exc}")
            raise ToolError(
                f"not confirmed: the client could not ask the user ({exc}). Nothing was sent."
            ) from None


def _raised_by_gate(exc: BaseException) -> bool:
    """A ToolError our own tool body raised (the SDK wraps it): the gate journaled it if it was a refusal."""
    while exc is not None:
        if getattr(exc, "gpu_tools", False):
            return True
        exc = exc.__cause__  # type: ignore[assignment]
    return False


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
            if answer.data.confirm is True:
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
        error = ToolError(str(exc))
    else:
        log.exception("unexpected error in %s", op.name)
        error = ToolError(
            f"{op.name} failed unexpectedly ({type(exc).__name__}); the server log has details."
        )
    error.gpu_tools = True  # type: ignore[attr-defined]
    return error


# Approval asked by a call's resolver, keyed by the call's Context (the same object reaches the body).
_ASKED: dict[int, str] = {}


def make_tool(tk: Toolkit, op: Operation) -> Any:
    """A function MCPServer can register: signature from the input model, body calls the core."""
    params, hints = _parameters(op)
    asked = _ASKED
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
            # Runs before the body, possibly on every round. A fresh call makes a new approval; a
            # later round finds the same one (same plan, same text), so the client's answer counts
            # only for the question it was shown, and a replayed answer meets a used approval.
            if kwargs.get("dry_run") or not can_elicit(ctx):
                return DeclinedElicitation()
            question = await tk.question(op.name, kwargs, resume=resuming(ctx))
            asked.pop(id(ctx), None)
            if question is None:
                return DeclinedElicitation()
            asked[id(ctx)] = question.approval.id  # the body's yes belongs to this approval only
            while len(asked) > 1000:  # rounds whose body never ran (the client did not come back)
                asked.pop(next(iter(asked)))
            return Elicit(question.text + "\n\nSend this request?", Confirmation)

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
                return await tk.call(
                    op.name, kwargs, confirmer=confirmer, approval_id=asked.pop(id(ctx), None)
                )
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
    server = GpuServer(
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
        # Clients that validate see that unknown arguments are refused (the server refuses them anyway).
        server._tool_manager.get_tool(op.name).parameters["additionalProperties"] = False  # type: ignore[union-attr]
    add_resources(server, tk)
    add_completions(server, tk, prompts=add_prompts(server, tk), templates={RESOURCE_TEMPLATE})
    server.toolkit = tk
    return server
