"""The MCP front: one tool per registry operation, generated, with no per-operation code.

Each tool's parameters are its operation's input fields; annotations come from its effect. A
mutating tool has a hidden resolver parameter that asks the human through elicitation with the
plan's text before the body runs; the body then passes the answer to the core's gate, which
refuses (and journals the refusal) unless the answer was an explicit yes. A client that cannot
elicit is never asked and always refused: fail closed.
"""

# ruff: noqa: E402 (the imports follow the pause of the garbage collector)
from __future__ import annotations

import gc

# Importing the SDK and the core makes a few hundred thousand objects that live as long as the
# process, and the collector would scan them again and again on the way (about 70 ms of a start,
# most of it in the SDK's own modules). It is paused while this package loads; at the end what was
# built is frozen out of its view (modules and classes never become garbage) and it resumes.
_collecting = gc.isenabled()
gc.disable()

import copy
import inspect
import logging
import re
from collections.abc import Awaitable, Callable
from functools import cache
from typing import Annotated, Any

import pydantic_core
from mcp.server.elicitation import AcceptedUrlElicitation
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
from mcp.server.mcpserver.resolve import build_resolver_plans, find_resolved_parameters
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase, FuncMetadata
from mcp.server.request_state import RequestStateSecurity
from mcp.shared.exceptions import MCPError
from mcp.types import (
    CallToolResult,
    ElicitRequest,
    ElicitRequestURLParams,
    InputRequiredResult,
    TextContent,
    ToolAnnotations,
)
from pydantic import BaseModel, Field, PrivateAttr, StrictBool, TypeAdapter

from gpu_tools import __version__
from gpu_tools.errors import ConfirmationRefused, GpuToolsError, PlanChanged
from gpu_tools.gate import Approve, Question
from gpu_tools.models import Listing, MutationResult, Offer, Plan, plain
from gpu_tools.operations import CONFIRMATION, Operation
from gpu_tools.providers.declare import titles as provider_titles
from gpu_tools.settings import Settings
from gpu_tools.toolkit import Toolkit
from mcp_server import rounds
from mcp_server.auth import journal_state_refusals, user_of
from mcp_server.completions import add_completions
from mcp_server.prompts import add_prompts
from mcp_server.resources import RESOURCE_TEMPLATE, add_resources
from mcp_server.schemas import SchemaCache

log = logging.getLogger("mcp_server")

INSTRUCTIONS = f"""\
Tools to find, start, use and stop GPU resources at {provider_titles()}. Start with list_providers (it
also names the tool sets this server can list) and list_offers.
"""
CONFIRMING = """\
Every tool that changes something at a provider asks the user to confirm a plan (what will be sent, what
it costs per hour, whether it can be undone) before anything is sent; pass dry_run=true to see that plan
without asking. Resources cost money while they run: delete or stop what you start, and check history
for anything left behind.
"""
READ_ONLY = """\
This server is read-only: it lists and reads, and changes nothing at any provider.
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


def legacy(ctx: Context) -> bool:
    """A 2025-11-25 (or older) session: the server asks with `elicitation/create` during the call."""
    version = ctx.protocol_version
    return version is None or version < "2026-07-28"  # ISO dates compare as strings


def hidden_because(tk: Toolkit, op: Operation) -> str | None:
    """Why this server does not list `op`'s tool, in a sentence naming how to change it, or None."""
    s = tk.settings
    if op.mutating and s.read_only:
        return (
            f"{op.name} is hidden: this server is read-only (read_only / --read-only), so no tool that "
            "changes anything is listed. Restart it without --read-only to use it."
        )
    if op.provider and s.allowed_providers is not None and op.provider not in s.allowed_providers:
        return (
            f"{op.name} is hidden: provider {op.provider} is not in allowed_providers {s.allowed_providers}."
        )
    if (
        op.toolset not in tk.toolsets()
        and op.provider
        and s.toolsets is None
        and not tk.configured(op.provider)
    ):
        return (
            f"{op.name} is hidden: provider {op.provider} has no credentials, so its tool set "
            f"{op.toolset!r} is not enabled. {tk.adapters[op.provider].config_hint()}"
        )
    if op.toolset not in tk.toolsets():
        return (
            f"{op.name} is hidden: its tool set {op.toolset!r} is not enabled. Start gpu-mcp with --toolsets "
            f"default,{op.toolset} (or set GPU_TOOLS_TOOLSETS=default,{op.toolset}) to list it."
        )
    return None


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
        user = _caller(context)
        if self._tool_manager.get_tool(name) is None:
            why = hidden_because(tk, op) or f"{name} is not listed by this server."
            if op.mutating:
                await tk.gate.journal_refusal(op, arguments, f"hidden tool: {why}", actor=user, plan_it=False)
            raise ToolError(f"{why} Nothing was sent.")
        try:
            await tk.gate.parse(op, arguments, actor=user) if op.mutating else op.parse(arguments)
        except GpuToolsError as exc:
            raise ToolError(f"{exc} Nothing was sent.") from None
        if op.mutating and context is not None:
            link = await _url_round(tk, op, arguments, context, user)
            if link is not None:
                return link
        round_ = rounds.Round()
        try:
            with rounds.round_of(context) as round_:
                result = await super().call_tool(name, arguments, context)
            if isinstance(result, InputRequiredResult):
                rounds.carry(result, round_)
            return result
        except ToolError as exc:
            if not op.mutating or _raised_by_gate(exc):
                raise
            reason = str(exc).removeprefix(f"Error executing tool {name}: ")
            reason = re.sub(r"^Resolver '[^']*':?\s*", "", reason)
            reason = reason[:1].lower() + reason[1:]
            await tk.gate.journal_refusal(
                op, arguments, f"the confirmation failed: {reason}", actor=user, asked=round_.answered()
            )
            raise ToolError(
                f"not confirmed: the client's answer to the confirmation could not be used ({reason}). "
                "Nothing was sent."
            ) from None
        except MCPError as exc:
            if not op.mutating:
                raise
            await tk.gate.journal_refusal(
                op,
                arguments,
                f"the client could not ask the user: {exc}",
                actor=user,
                asked=round_.answered(),
            )
            raise ToolError(
                f"not confirmed: the client could not ask the user ({exc}). Nothing was sent."
            ) from None


URL_ROUND = "gpu_tools_approval_page"  # the input request of a 2026-07-28 URL-mode round


async def _url_round(
    tk: Toolkit, op: Operation, arguments: dict[str, Any], ctx: Context, user: str | None
) -> InputRequiredResult | None:
    """2026-07-28, a client that declared URL mode, a plan the approval page must approve: the first
    round answers an InputRequiredResult whose URL input request is the approval page (the tool's
    resolvers cannot return one themselves); the client opens it and retries, and that retry runs
    the tool, which finds the same approval (one per plan and requester) and waits for its decision.
    None: not such a round (a legacy session asks with elicitation/create inside the tool)."""
    if legacy(ctx) or not can_open_urls(ctx) or arguments.get("dry_run") is True:
        return None
    if URL_ROUND in (ctx.input_responses or {}):
        return None  # the retry after the person was sent to the page
    question = await tk.question(
        op.name,
        arguments,
        asked_by=user,
        page=not can_elicit(ctx),
        client=client_name(ctx),
        page_only=True,
        asked=rounds.asked_in(ctx),  # a form question an earlier round asked is closed, not left
    )
    if question is None:
        return None  # the form asks (or nothing is asked): the tool's own rounds
    approval = question.approval
    if approval.status is not None or approval.consumed_at is not None or approval.expired:
        return None
    link = tk.approvals.pending_link(approval)
    tk.approvals.announce(approval)
    request = ElicitRequest(
        params=ElicitRequestURLParams(
            mode="url",
            message=f"Approve on the gpu-tools approval page: {plain(question.plan.action)}",
            url=link.url,
            elicitation_id=approval.id,
        )
    )
    return InputRequiredResult(input_requests={URL_ROUND: request})


def _caller(context: Context | None) -> str | None:
    """The user of this call's HTTP request (None over stdio, in process, or outside a request)."""
    try:
        return user_of(context.request_context.request) if context is not None else None
    except (ValueError, AttributeError, LookupError):
        return None


def _raised_by_gate(exc: BaseException) -> bool:
    """A ToolError our own tool body raised (the SDK wraps it): the gate journaled it if it was a refusal."""
    while exc is not None:
        if getattr(exc, "gpu_tools", False):
            return True
        exc = exc.__cause__  # type: ignore[assignment]
    return False


class ElicitedConfirmer:
    """The gate's confirmer for one MCP call: the answer was already given by elicitation, to the
    question (approval) the call's resolver asked; the gate refuses a yes that names none."""

    answers_a_question = True

    def __init__(
        self, answer: ElicitationResult[Confirmation], elicitable: bool, *, asked: bool = True
    ) -> None:
        self.answer = answer
        self.elicitable = elicitable
        self.asked = asked  # False: this round asked no question, so its answer is nobody's

    async def confirm(self, plan: Plan) -> bool:
        if not self.elicitable:
            raise ConfirmationRefused(NO_ELICITATION, provider=plan.provider)
        if not self.asked:
            raise ConfirmationRefused(
                "not confirmed: no question could be asked in this round (the plan could not be read again "
                "from the provider to check it), so no answer was used. Nothing was sent; call again to be asked.",
                provider=plan.provider,
            )
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
    """The spec's hints: destructive and idempotent only mean something for a tool that is not
    read-only; destructive is false only for purely additive changes (a create, a start)."""
    if not op.mutating:
        return ToolAnnotations(read_only_hint=True, open_world_hint=op.open_world)
    return ToolAnnotations(
        read_only_hint=False,
        destructive_hint=bool(op.destructive),
        idempotent_hint=op.effect in ("update", "destroy"),
        open_world_hint=op.open_world,
    )


def _parameters(op: Operation) -> list[inspect.Parameter]:
    """Keyword parameters named as the operation's input model's fields, for the signatures the SDK
    inspects (resolvers are handed the arguments by name). Types and constraints are the input
    model's business: `OpArguments` parses with it."""
    return [
        inspect.Parameter(
            name,
            inspect.Parameter.KEYWORD_ONLY,
            default=inspect.Parameter.empty if field.is_required() else field.default,
        )
        for name, field in op.input.model_fields.items()
    ]


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


def make_tool(tk: Toolkit, op: Operation) -> Any:
    """A function MCPServer can register: signature from the input model, body calls the core.

    A mutating tool has two resolvers: `question_<op>` makes (or, on a later round, finds) the
    approval and its question; `confirm_<op>` asks it. Within a round the SDK runs each resolver
    once and hands the body the same question the person was shown, and on 2026-07-28 an answer
    counts only for the exact text it answered (the text names the approval): the yes and its
    approval travel together with the protocol, through no table of our own."""
    params = _parameters(op)
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
        annotations: dict[str, Any] = {"ctx": Context, "return": op.output}
    else:

        async def question_for(ctx: Context, **kwargs: Any) -> Question | None:
            # Runs before the body on every round: a fresh call makes a new approval; a later
            # round (the answer) reads the plan again and finds the approval its request state
            # names (mcp_server.rounds) only while the plan is unchanged, else makes a new one,
            # whose new text the client is asked again.
            # A client that cannot show a form, or a policy that wants the approval page, gets the
            # one open page approval of this plan (the same one on every call until it expires).
            if kwargs.get("dry_run"):
                return None
            asker = user_of(ctx.request_context.request)
            round_ = rounds.current() or rounds.Round()
            question = await tk.question(
                op.name,
                kwargs,
                resume=resuming(ctx),
                asked_by=asker,
                page=not can_elicit(ctx),
                client=client_name(ctx),
                asked=round_.asked,
            )
            round_.question = question
            return question

        question_for.__signature__ = inspect.Signature([ctx_param, *params])  # type: ignore[attr-defined]
        question_for.__annotations__ = {"ctx": Context, "return": Question | None}
        question_for.__qualname__ = f"question_{op.name}"
        asked_annotation = Annotated[Question | None, Resolve(question_for)]
        asked_param = inspect.Parameter("asked", inspect.Parameter.KEYWORD_ONLY, annotation=asked_annotation)

        async def ask(
            ctx: Context, asked: Question | None, **kwargs: Any
        ) -> Elicit[Confirmation] | DeclinedElicitation:
            if asked is None or asked.on_the_page or not can_elicit(ctx):
                return DeclinedElicitation()  # not asked here: the approval page answers it
            return Elicit(asked.text + "\n\nSend this request?", Confirmation)

        ask.__signature__ = inspect.Signature([ctx_param, asked_param, *params])  # type: ignore[attr-defined]
        ask.__annotations__ = {
            "ctx": Context,
            "asked": asked_annotation,
            "return": Elicit[Confirmation] | DeclinedElicitation,
        }
        ask.__qualname__ = f"confirm_{op.name}"

        async def mutating_tool(
            ctx: Context,
            asked: Annotated[Question | None, Resolve(question_for)],
            confirmation: Annotated[ElicitationResult[Confirmation], Resolve(ask)],
            **kwargs: Any,
        ) -> Any:
            actor = user_of(ctx.request_context.request)
            try:
                if asked is not None and (asked.on_the_page or not can_elicit(ctx)):
                    return await on_the_page(tk, op, ctx, kwargs, actor, asked)
                round_ = rounds.current()
                try:
                    return await tk.call(
                        op.name,
                        kwargs,
                        confirmer=ElicitedConfirmer(confirmation, can_elicit(ctx), asked=asked is not None),
                        approval_id=asked.approval.id if asked is not None else None,
                        answers=round_.asked if round_ is not None else None,
                        actor=actor,
                    )
                except PlanChanged as changed:
                    if not (legacy(ctx) and can_elicit(ctx)):
                        raise  # 2026-07-28: the next call's resolver asks about the new plan
                    return await _ask_again(tk, op, ctx, kwargs, actor, changed)
            except Exception as exc:
                raise _tool_error(exc, op) from None

        fn = mutating_tool
        answer_annotation = Annotated[ElicitationResult[Confirmation], Resolve(ask)]
        answer = inspect.Parameter(
            "confirmation", inspect.Parameter.KEYWORD_ONLY, annotation=answer_annotation
        )
        signature = [ctx_param, asked_param, answer, *params]
        annotations = {
            "ctx": Context,
            "asked": asked_annotation,
            "confirmation": answer_annotation,
            "return": op.output,
        }

    fn.__signature__ = inspect.Signature(signature, return_annotation=op.output)  # type: ignore[attr-defined]
    fn.__annotations__ = annotations
    fn.__name__ = fn.__qualname__ = op.name
    return fn


def client_name(ctx: Context) -> str | None:
    """The MCP client's name and version as it introduced itself (shown on the approval page)."""
    try:
        params = ctx.session.client_params
    except (AttributeError, LookupError, ValueError):
        return None
    info = getattr(params, "client_info", None)
    if info is None:
        return None
    return f"{info.name} {info.version}".strip() if getattr(info, "version", None) else info.name


def can_open_urls(ctx: Context) -> bool:
    """Whether the client declared URL-mode elicitation (it shows a link and may open it)."""
    caps = ctx.client_capabilities
    elicitation = caps.elicitation if caps is not None else None
    return elicitation is not None and elicitation.url is not None


async def on_the_page(
    tk: Toolkit, op: Operation, ctx: Context, args: dict[str, Any], actor: str | None, asked: Question
) -> Any:
    """The approval page answers this call's question: the link goes to the person (URL-mode
    elicitation where the client has it, the server's terminal and the webhook always), the call
    waits up to `approval_wait` (with progress) for the decision, and then sends, is refused, or
    answers `approval_pending` with the link, to be called again with the same arguments."""
    approval = asked.approval
    decided = approval.status is not None or approval.consumed_at is not None or approval.expired
    if not decided:
        link = tk.approvals.pending_link(approval)
        tk.approvals.announce(approval)
        elicited = False
        if can_open_urls(ctx) and legacy(ctx):
            try:
                answer = await ctx.elicit_url(
                    f"Approve on the gpu-tools approval page: {plain(asked.plan.action)}",
                    link.url,
                    approval.id,
                )
                elicited = isinstance(answer, AcceptedUrlElicitation)
            except (MCPError, ValueError) as exc:
                log.warning("URL elicitation failed (%s): the link is in the result", exc)

        async def progress(done: float, total: float | None, message: str) -> None:
            await ctx.report_progress(done, total, message)

        approval = await tk.approvals.wait(approval.id, tk.approvals.wait_seconds(), progress)
        if elicited and approval.status is not None:
            try:
                await ctx.session.send_elicit_complete(approval.id)
            except (MCPError, ValueError, AttributeError) as exc:
                log.warning("could not tell the client the approval is complete (%s)", exc)
        if approval.status is None and approval.consumed_at is None and not approval.expired:
            return MutationResult(
                outcome="approval_pending",
                plan=asked.plan,
                approval=link.model_dump(mode="json"),
                sandbox=tk.settings.sandbox,
            )
    return await tk.call(op.name, args, confirmer=Approve(), approval_id=approval.id, actor=actor)


ASK_AGAIN = 2  # legacy: how many times one call asks about a plan that changed while it was asked


async def _ask_again(
    tk: Toolkit, op: Operation, ctx: Context, args: dict[str, Any], actor: str | None, changed: PlanChanged
) -> Any:
    """2025-11-25: the plan changed between the question and the send (the gate refused and journaled
    it); ask the person about the new plan in the same call, with its own approval."""
    for _ in range(ASK_AGAIN):
        question = await tk.question(op.name, args, asked_by=actor, client=client_name(ctx))
        if question is None:
            raise changed
        if question.on_the_page:  # the new plan needs the approval page: its link, not a form
            return await on_the_page(tk, op, ctx, args, actor, question)
        try:
            answer = await ctx.elicit(
                f"The plan changed since you were asked: {changed.change}.\n\n{question.text}"
                "\n\nSend this request?",
                Confirmation,
            )
        except (ValueError, MCPError) as exc:
            reason = f"the client's answer to the new question could not be used ({exc})"
            await tk.gate.journal_refusal(
                op, args, f"the confirmation failed: {reason}", actor=actor, asked=question.approval.id
            )
            raise ConfirmationRefused(f"not confirmed: {reason}. Nothing was sent.") from None
        try:
            return await tk.call(
                op.name,
                args,
                confirmer=ElicitedConfirmer(answer, True),
                approval_id=question.approval.id,
                actor=actor,
            )
        except PlanChanged as again:
            changed = again
    raise changed


def compact_schema(schema: Any, *, root: bool = True, descriptions: bool = True) -> Any:
    """A JSON schema as a model reads it, without what pydantic adds for itself: no titles, no
    root description (the tool's description says it), `X | None` as X with no null default; with
    descriptions=False (output schemas, read by programs) no descriptions at all.
    Arguments are still validated by the operation's input model, which accepts null as before."""
    if isinstance(schema, list):
        return [compact_schema(item, root=False, descriptions=descriptions) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    options = schema.get("anyOf")
    if isinstance(options, list) and {"type": "null"} in options:
        rest = [o for o in options if o != {"type": "null"}]
        schema = {k: v for k, v in schema.items() if k != "anyOf"}
        if schema.get("default", 0) is None:
            del schema["default"]
        if len(rest) == 1:
            schema = {**rest[0], **schema}
        else:
            schema["anyOf"] = rest
    options = schema.get("anyOf")
    if not descriptions and isinstance(options, list) and all(o.get("type") == "string" for o in options):
        # `datetime | str` and the like: any string (a format on one option does not narrow the union)
        schema = {**{k: v for k, v in schema.items() if k != "anyOf"}, "type": "string"}
    for key, value in schema.items():
        if key == "title" and isinstance(value, str):
            continue
        if key == "description" and (root or not descriptions):
            continue
        if not descriptions and (key == "additionalProperties" or (key == "default" and value is None)):
            continue  # output schemas: what a program checks, nothing more
        if key in ("properties", "$defs") and isinstance(value, dict):
            out[key] = {
                name: compact_schema(sub, root=False, descriptions=descriptions)
                for name, sub in value.items()
            }
        else:
            out[key] = compact_schema(value, root=False, descriptions=descriptions)
    return out


@cache
def output_schema(output: type[BaseModel]) -> dict[str, Any]:
    """The output schema of one result type, built once however many tools return it. A result says
    once, at its root, whether it came from the sandbox: the results nested in it (a plan, a resource)
    leave `sandbox` out of their schemas (output schemas allow properties they do not list)."""
    schema = TypeAdapter(output).json_schema()
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):  # a recursive root: inline it
        schema = copy.deepcopy({**schema["$defs"][ref.removeprefix("#/$defs/")], "$defs": schema["$defs"]})
        del schema["$ref"]
    for nested in schema.get("$defs", {}).values():
        nested.get("properties", {}).pop("sandbox", None)
    return compact_schema(schema, descriptions=False)


def whole_numbers(value: Any) -> Any:
    """`value` with every whole float as an int: the same JSON number without its ".0" (a GPU's
    80 GB, a price of 2 USD), which output schemas' "number" accepts as it is."""
    if isinstance(value, float):
        return int(value) if value.is_integer() and abs(value) < 2**53 else value
    if isinstance(value, dict):
        return {k: whole_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [whole_numbers(v) for v in value]
    return value


def lean_result(result: BaseModel) -> CallToolResult:
    """One result, twice as the spec asks (text and structured, the same JSON), each as small as it
    can be: no nulls, no fields at their default (the output schema states them), whole numbers
    without ".0", compact JSON."""
    data = whole_numbers(
        pydantic_core.from_json(result.model_dump_json(exclude_none=True, exclude_defaults=True))
    )
    text = pydantic_core.to_json(data).decode()
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=data)


USD_PRICES = (
    "price and currency are shown where they differ from usd_per_hour (another currency, a price per GPU)"
)


# A provider's offers whose price ages lie within this many seconds share one age, said once: their
# oldest (the ages of one fetch differ by a second or so where the provider stamps each price).
AGES_SAID_ONCE = 60


def brief_offers(listing: Listing[Any]) -> None:
    """What a brief listing of offers says once instead of in every offer: that a price the
    provider states in USD for the whole offer is its usd_per_hour (so `price` and `currency`
    are left out there), and each provider's price age, the oldest of its offers, when they all lie
    within AGES_SAID_ONCE seconds (kept in each offer where they do not)."""
    offers = [o for o in listing.items if isinstance(o, Offer)]
    same = [o for o in offers if o.currency == "USD" and o.price is not None and o.price == o.usd_per_hour]
    for o in same:
        o.price = o.currency = None
    if same:
        listing.notes.append(USD_PRICES)
    ages: dict[str, list[int]] = {}
    for o in offers:
        if o.price_age_seconds is not None:
            ages.setdefault(o.provider, []).append(o.price_age_seconds)
    by_age: dict[int, list[str]] = {}
    for provider, seen in sorted(ages.items()):
        if max(seen) - min(seen) <= AGES_SAID_ONCE:
            by_age.setdefault(max(seen), []).append(provider)
    said = {p for providers in by_age.values() for p in providers}
    for o in offers:
        if o.provider in said:
            o.price_age_seconds = None
    for age, providers in sorted(by_age.items()):
        listing.notes.append(f"Prices read at most {age} s ago (price_age_seconds): {', '.join(providers)}")


def _lean(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[CallToolResult]]:
    async def lean_tool(**kwargs: Any) -> CallToolResult:
        result = await fn(**kwargs)
        if isinstance(result, Listing) and kwargs.get("verbose") is False:
            result.brief()
            brief_offers(result)
        return lean_result(result)

    return lean_tool


def description_for(op: Operation, read_only: bool) -> str:
    return op.description if not op.mutating or read_only else f"{op.description} {CONFIRMATION}"


class OpArguments(FuncMetadata):
    """The tool's arguments as the operation's own input model reads them: one strict parse (the
    same one `GpuServer.call_tool` uses to refuse bad input before the SDK sees it) instead of a
    second argument model built from the function's signature."""

    _op: Operation | None = PrivateAttr(None)

    def validate_arguments(self, arguments_to_validate: dict[str, Any]) -> dict[str, Any]:
        if self._op is None:
            raise RuntimeError("internal error: expected self._op is not None")
        data = self._op.parse(arguments_to_validate)
        return {name: getattr(data, name) for name in self._op.input.model_fields}


@cache
def input_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The published input schema of one input model, built once however many tools take it."""
    return compact_schema(model.model_json_schema())


def tool_for(tk: Toolkit, op: Operation, schemas: SchemaCache | None = None) -> Tool:
    """The MCP tool of one operation, assembled from parts built once per type: the input schema
    of its input model, the output schema of its result type (kept between starts by `schemas`).
    Its arguments are read by the operation's input model (`OpArguments`)."""
    schemas = schemas or SchemaCache()
    fn = make_tool(tk, op)
    resolved = find_resolved_parameters(fn)
    outputs = schemas.get("output", op.output, lambda: output_schema(op.output))
    arguments = OpArguments(arg_model=ArgModelBase, output_schema=outputs)
    arguments._op = op
    return Tool(
        fn=_lean(fn),
        name=op.name,
        title=op.title,
        description=description_for(op, tk.settings.read_only),
        parameters=schemas.get("input", op.input, lambda: input_schema(op.input)),
        fn_metadata=arguments,
        is_async=True,
        context_kwarg="ctx",
        resolved_params=dict(resolved),
        resolver_plans=build_resolver_plans(resolved, set(op.input.model_fields)),
        annotations=annotations_for(op),
    )


def instructions_for(settings: Settings) -> str:
    text = INSTRUCTIONS + (READ_ONLY if settings.read_only else CONFIRMING)
    if settings.sandbox:
        text += "This server talks to the local SANDBOX, not to real clouds.\n"
    return text


def build_server(settings: Settings | None = None, *, toolkit: Toolkit | None = None) -> MCPServer:
    """An MCPServer exposing the registry operations of the enabled tool sets that the settings
    allow (mutations are not even registered in read-only mode)."""
    tk = toolkit or Toolkit(settings)
    schemas = SchemaCache()
    key = tk.settings.http_state_key
    security = None
    if key is not None:
        # Replicas sharing this key answer each other's confirmation rounds; the round is bound to the
        # token's user, and the approval row in the shared journal keeps the answer single-use.
        security = RequestStateSecurity(
            keys=[key.get_secret_value()], bind_principal=lambda ctx: user_of(ctx.request)
        )
    server = GpuServer(
        request_state_security=security,
        name="gpu-tools",
        title="GPU tools" + (" (sandbox)" if tk.settings.sandbox else ""),
        instructions=instructions_for(tk.settings),
        version=__version__,
        tools=[tool_for(tk, op, schemas) for op in tk.operations(tk.toolsets())],
        log_level="WARNING",  # the SDK would set the root logger to INFO: a line per provider request
    )
    schemas.save()
    add_resources(server, tk)
    add_completions(server, tk, prompts=add_prompts(server, tk), templates={RESOURCE_TEMPLATE})
    server.toolkit = tk
    journal_state_refusals(server)  # every transport: a refused requestState leaves a row
    return server


gc.freeze()
if _collecting:
    gc.enable()
