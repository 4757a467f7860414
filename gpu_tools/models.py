"""Normalized domain models shared by every provider and both fronts.

Provider adapters map their wire JSON into these; the fronts render them. Each model keeps the
provider's own raw values (`raw_status`, `details`) next to the normalized ones, so nothing the
provider said is lost in translation.
"""

import json
import re
import unicodedata
from collections.abc import Awaitable, Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Literal, Self, TypeVar, get_args, get_origin, overload
from urllib.parse import quote

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    PrivateAttr,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue, SkipJsonSchema
from pydantic_core import CoreSchema, PydanticCustomError

# Every provider's name, in the order the providers registered (gpu_tools.providers.declare adds
# each one's name as it registers; nothing else writes it).
PROVIDER_NAMES: list[str] = []


def _provider_name(value: str) -> str:
    if value not in PROVIDER_NAMES:
        quoted = [repr(name) for name in PROVIDER_NAMES]
        expected = f"{', '.join(quoted[:-1])} or {quoted[-1]}" if len(quoted) > 1 else "".join(quoted)
        raise PydanticCustomError("literal_error", "Input should be {expected}", {"expected": expected})
    return value


class _ProviderNames:
    """The JSON schema of a provider name: an enum of the providers registered."""

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {**handler(schema), "enum": list(PROVIDER_NAMES)}


# A provider's name, as a tool argument: one of PROVIDER_NAMES (validated and listed in the schema).
ProviderName = Annotated[str, AfterValidator(_provider_name), _ProviderNames()]


def choices_of(annotation: Any, metadata: Iterable[Any] = ()) -> list[str] | None:
    """The values an argument of this type may take (a Literal's, or every provider's name), or None
    when it is free: what a front offers as choices. `metadata` is the field's (pydantic moves an
    `Annotated` type's metadata there when the field is not optional)."""
    if get_origin(annotation) is Literal:
        return [str(a) for a in get_args(annotation)]
    if get_origin(annotation) is Annotated:
        metadata = [*metadata, *annotation.__metadata__]
    if any(isinstance(m, _ProviderNames) for m in metadata):
        return list(PROVIDER_NAMES)
    return None


Effect = Literal["read", "create", "update", "destroy"]
Status = Literal["pending", "running", "stopped", "failed", "deleting", "unknown"]
Kind = Literal["endpoint", "container", "instance", "registry", "auth", "image"]
# The kinds that run on GPUs and cost money while they exist.
BILLABLE_KINDS = ("endpoint", "container", "instance")
URI_SCHEME = "gpu"

T = TypeVar("T", bound=BaseModel)
# Keys of an item's `details` that hold a note for the reader rather than provider data.
NOTE_KEYS = ("note", "usd_note", "price_note")


Clock = Callable[[], datetime]
"""What the core asks for the time: an aware UTC datetime. Tests pass their own instead of sleeping."""


def utc_now() -> datetime:
    """The wall clock, in UTC (the default `Clock`)."""
    return datetime.now(UTC)


def parse_time(value: Any) -> datetime | None:
    """A provider's or the journal's time (ISO 8601, `Z` or an offset, or none: UTC) as an aware datetime."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, defer_build=True)


def resource_uri(provider: str, resource_id: str) -> str:
    """The URI naming one resource, `gpu://<provider>/<resource_id>` (the id percent-encoded), under
    which the MCP front serves it as a readable resource."""
    return f"{URI_SCHEME}://{provider}/{quote(resource_id, safe='')}"


class Addressable(Model):
    """A billable resource's provider and id, plus the URI that names it (filled in when absent)."""

    provider: str
    resource_id: str | None = None
    kind: str | None = None
    uri: str | None = Field(
        None, description="gpu://provider/resource_id: this resource's URI, readable as an MCP resource."
    )

    @model_validator(mode="after")
    def _fill_uri(self) -> Self:
        if self.uri is None and self.resource_id and (self.kind or "endpoint") in BILLABLE_KINDS:
            self.uri = resource_uri(self.provider, self.resource_id)
        return self


class Result(Model):
    """Base of every operation result: says whether it came from the built-in sandbox."""

    sandbox: bool = Field(
        False, description="True when this answer came from the local sandbox, not a cloud."
    )


class Offer(Model):
    """Something rentable: a GPU flavor, machine or SKU, with its price."""

    provider: str
    kind: Kind
    offer_id: str = Field(description="The provider's id to pass to a create tool (flavor, hardware, SKU).")
    gpu_name: str = Field(description="The provider's own GPU name.")
    gpu_model: str | None = Field(None, description="Canonical GPU model, e.g. H100.")
    gpu_count: int | None = None
    gpu_memory_gb: float | None = None
    vcpu: int | None = None
    ram_gb: float | None = None
    region: str | None = None  # the region's name where the provider gives one, else its id
    region_id: str | None = None  # the provider's id when `region` is a name
    price: float | None = Field(None, description="Price per hour in `currency`, as the provider states it.")
    currency: str | None = None
    usd_per_hour: float | None = None
    usd_per_gpu_hour: float | None = None
    price_estimated: bool = Field(False, description="True when the USD figure was converted or inferred.")
    price_as_of: str | None = Field(
        None,
        description="When this price was read (UTC), from the provider or (Nebius) your settings; prices "
        "are reused for a while (offers_cache_ttl, catalog_cache_ttl).",
    )
    price_age_seconds: int | None = Field(None, description="Seconds since this price was read.")
    available: bool | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class Template(Model):
    """A model template or image a resource can be created from."""

    provider: str
    name: str
    description: str | None = None
    flavors: list[str] = Field(default_factory=list)
    gpu_types: list[str] = Field(default_factory=list)
    gpu_counts: list[int] = Field(default_factory=list)
    regions: list[str] = Field(default_factory=list)
    details: dict[str, Any] = Field(default_factory=dict)


class Region(Model):
    provider: str
    region_id: str
    name: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class Resource(Result, Addressable):
    """Something live at a provider that may cost money: an endpoint, container or instance."""

    provider: str
    kind: Kind  # type: ignore[assignment]
    resource_id: str = Field(description="Pass this as-is to get/update/stop/start/delete/wait tools.")
    name: str | None = None
    status: Status
    raw_status: str | None = Field(None, description="The provider's own status string.")
    region: str | None = None
    gpu_name: str | None = None
    gpu_count: int | None = None
    replicas: int | None = None
    min_replicas: int | None = None
    max_replicas: int | None = None
    url: str | None = None
    model: str | None = Field(None, description="Model name to send in inference calls, when relevant.")
    created_at: datetime | str | None = None
    usd_per_hour: float | None = None
    # provider (its own figure) or journal (the plan's, journaled at creation); kept out of the tools'
    # output schemas, which a Resource appears in a dozen times.
    price_source: SkipJsonSchema[str | None] = None
    details: dict[str, Any] = Field(default_factory=dict)


class WaitResult(Resource):
    """A resource as `wait_for_resource` last saw it, and whether it reached the awaited state."""

    reached: bool = Field(description="True when the resource reached the awaited state.")
    waited_seconds: float = Field(description="How long this call waited.")
    note: str | None = Field(None, description="What to do next when the state was not reached yet.")


class ProviderStatus(Model):
    provider: str
    status: Literal["ok", "partial", "error", "timeout", "not_configured", "unsupported"] = Field(
        description="partial: the provider answered but the listing is incomplete (message says what is missing)."
    )
    message: str | None = None


class Listing(Result, Generic[T]):
    """A list of items gathered from one or more providers, with what happened at each.

    It is a sequence of its items (`len`, iteration, `r[0]`, `r[:5]`), and `.to_dataframe()` gives
    a pandas DataFrame (pandas is imported only then)."""

    items: list[T]
    total: int
    providers: list[ProviderStatus] = Field(default_factory=list)
    notes: list[str] = Field(
        default_factory=list,
        description="What applies to several items, said once (e.g. how a price was estimated).",
    )

    def brief(self) -> None:
        """What a listing says unless asked for more (verbose): no provider-specific `details` (the
        notes they carried are kept once in `notes`), and a price's age without its timestamp."""
        for item in self.items:
            if getattr(item, "price_age_seconds", None) is not None:
                item.price_as_of = None  # type: ignore[attr-defined]
            details = getattr(item, "details", None)
            if not details:
                continue
            for key in NOTE_KEYS:
                note = details.get(key)
                if isinstance(note, str) and note and note not in self.notes:
                    self.notes.append(note)
            item.details = {}  # type: ignore[attr-defined]

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[T]:  # type: ignore[override]  # the items, not pydantic's fields
        return iter(self.items)

    @overload
    def __getitem__(self, index: int) -> T: ...
    @overload
    def __getitem__(self, index: slice) -> "Listing[T]": ...
    def __getitem__(self, index: int | slice) -> "T | Listing[T]":
        if isinstance(index, slice):
            return self.model_copy(update={"items": self.items[index]})
        return self.items[index]

    def to_dicts(self) -> list[dict[str, Any]]:
        return [item.model_dump(mode="json") for item in self.items]

    def to_dataframe(self) -> Any:
        """The items as a pandas DataFrame, one row per item and one column per field."""
        try:
            import pandas
        except ImportError:
            raise ImportError(
                "to_dataframe needs pandas: pip install 'gpu-tools[pandas]' (or pip install pandas)."
            ) from None
        fields = list(type(self.items[0]).model_fields) if self.items else []
        return pandas.DataFrame([item.model_dump() for item in self.items], columns=fields or None)


class ProviderInfo(Model):
    name: str
    title: str
    configured: bool
    base_url: str
    capabilities: list[str]
    operations: list[str]
    toolsets: list[str] = Field(
        default_factory=list, description="The tool sets with this provider's own tools."
    )


class ToolsetInfo(Model):
    """A group of tools the MCP server lists or leaves out as one."""

    name: str
    description: str
    enabled: bool = Field(description="Whether the MCP server lists this set now.")
    tools: list[str]


class ProviderListing(Listing[ProviderInfo]):
    """The providers, and the tool sets with how to turn them on."""

    toolsets: list[ToolsetInfo] = Field(default_factory=list)
    how_to_enable: str = ""


class WireRequest(Model):
    """The exact HTTP call a mutation will make (the body before masking)."""

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
    path: str
    json_body: Any = None
    params: dict[str, Any] | None = None


class Plan(Result):
    """What a mutating call is about to do, shown to the human before anything is sent."""

    provider: str
    operation: str
    action: str = Field(description="One sentence: what will happen.")
    target: str = Field(description="The resource affected (name or id).")
    method: str
    path: str
    body: Any = Field(None, description="The request body, secrets masked.")
    usd_per_hour: float | None = Field(None, description="Estimated cost per hour at the requested size.")
    usd_per_hour_max: float | None = Field(None, description="Estimated cost per hour at maximum scale.")
    price_source: str | None = Field(None, description="Where the cost figure came from.")
    gpus: int | None = Field(None, description="GPUs per resource at maximum scale, for policy.")
    gpu_name: str | None = None
    reversible: bool
    reversibility: str = Field(description="Whether and how this can be undone.")
    warnings: list[str] = Field(default_factory=list)
    expires_at: str | None = Field(
        None, description="When reap_expired may stop or delete what this creates."
    )
    expires_action: Literal["delete", "stop"] | None = Field(
        None, description="What gpu-guard does at expires_at: delete or stop."
    )
    kind: Kind | None = Field(None, description="What a create makes (endpoint, container, instance, ...).")
    steps: "list[Plan]" = Field(
        default_factory=list, description="For multi-resource plans: one plan per request."
    )
    # When there is nothing to send, the sentence that says so (for the fronts; not in the tools' schemas).
    nothing_to_do: SkipJsonSchema[str | None] = None

    _request: WireRequest | None = PrivateAttr(None)
    _finish: Callable[[Any], Awaitable[Any]] | None = PrivateAttr(None)

    def cost_line(self, redact: Callable[[str], str] = str) -> str:
        """`Cost: ...`; `redact` applies to the provider's words (the source), never to the figures."""
        if self.usd_per_hour is None and self.usd_per_hour_max is None:
            return "Cost: unknown (" + redact(self.price_source or "no price published") + ")"
        parts = []
        if self.usd_per_hour is not None:
            parts.append(f"~${self.usd_per_hour:.2f}/hour")
        if self.usd_per_hour_max is not None and self.usd_per_hour_max != self.usd_per_hour:
            parts.append(f"up to ${self.usd_per_hour_max:.2f}/hour at max scale")
        src = f" (source: {redact(self.price_source)})" if self.price_source else ""
        return "Cost: " + ", ".join(parts) + src

    def message(self, redact: Callable[[str], str] = str) -> str:
        """The confirmation text: a pure function of the plan, so it is identical every time.

        Only what an agent or a provider chose passes through `redact` (secrets masked), and then
        `plain`: a line break or bidi override in a name cannot add a line (a fake "Cost:") or reorder
        one, and no secret can blank out a figure or a label. The cost comes before the body, so a
        long body never pushes it out of sight."""

        def text(value: str) -> str:
            return plain(redact(value))

        lines = [
            ("[SANDBOX] " if self.sandbox else "") + text(self.action),
            f"Provider: {text(self.provider)}    Target: {text(self.target)}",
            f"Request: {text(self.method)} {text(self.path)}",
        ]
        if self.usd_per_hour is not None or self.usd_per_hour_max is not None or self.price_source:
            lines.append(plain(self.cost_line(redact)))
        lines.append(("Reversible: " if self.reversible else "NOT reversible: ") + text(self.reversibility))
        if self.expires_at:
            verb = "stops" if self.expires_action == "stop" else "deletes"
            lines.append(f"Expires: {text(self.expires_at)} (then gpu-guard or reap_expired {verb} it)")
        if self.body not in (None, {}, []):  # every argument that is sent is seen
            lines.append(f"Sends: {text(shown(self.body))}")
        for i, step in enumerate(self.steps, 1):
            cost = f", {step.cost_line(redact)}" if step.usd_per_hour is not None else ""
            lines.append(f"  {i}. {text(step.action)} [{text(step.method)} {text(step.path)}{plain(cost)}]")
        lines += [f"Warning: {text(w)}" for w in self.warnings]
        return "\n".join(lines)


class ApprovalLink(Model):
    """An approval waiting for a person on the approval page."""

    id: str
    url: str = Field(description="The approval page: show it to the user in full; they sign in there.")
    expires_at: str
    via: str = Field(description="How the person approves: page or passkey.")
    next_step: str = Field(description="What to do: show the link, then call again with the same arguments.")


# Characters of a long text value's head and of its tail that a confirmation (or a journal row) shows;
# a text longer than both is cut in the middle, with its length, so its end is seen too.
SHOWN_TEXT = 200


def cut_text(value: str) -> str:
    """`value` whole, or its first and last SHOWN_TEXT characters with its length between them
    (`"aaa…zzz" (3,000,000 characters)`): what ends a long command is shown as well as how it starts."""
    if len(value) <= 2 * SHOWN_TEXT:
        return value
    return f"{value[:SHOWN_TEXT]}…{value[-SHOWN_TEXT:]} ({len(value):,} characters)"


# Characters that `str.isprintable()` accepts yet that show as blank or as nothing: the Hangul
# fillers (U+115F, U+1160, U+3164, U+FFA0), the blank braille pattern (U+2800), the musical null
# notehead (U+1D159), the combining grapheme joiner (U+034F) and the Khmer inherent vowels (U+17B4,
# U+17B5). Each could hide in a name a person approves ("gpu\u3164box" reads "gpu box" or "gpubox"),
# so `plain` escapes them and the line rule (gpu_tools.operations) refuses them in one-line values.
# What isprintable() rejects (zero-width, bidi, tag, format characters, unusual spaces) is not listed.
BLANK_CHARS = "\u115f\u1160\u3164\uffa0\u2800\U0001d159\u034f\u17b4\u17b5\U00016fe4"
BLANK = re.compile(f"[{BLANK_CHARS}]")
# Variation selectors: U+FE0E/U+FE0F choose how the symbol before them is drawn (❤ U+FE0F: the
# emoji ❤️); anywhere else, and the other selectors everywhere, they draw nothing ("gpu\ufe00box"
# reads "gpubox"), so there they are escaped too.
SELECTOR = re.compile("[\u180b-\u180d\u180f\ufe00-\ufe0f\U000e0100-\U000e01ef]")


def blank_in(text: str) -> str | None:
    """The first character of `text` that shows as blank or as nothing (`BLANK`, a character
    `isprintable()` refuses, a variation selector that selects nothing), or None: what the line
    rule refuses in a one-line value."""
    if text.isascii():
        return None  # its control characters are the line rule's own refusal
    before = ""
    for c in text:
        if c in BLANK_CHARS or not c.isprintable() or _stray(c, before):
            return c
        before = c
    return None


def _stray(c: str, before: str) -> bool:
    """A variation selector that draws nothing: any but U+FE0E/U+FE0F, or those not on a symbol."""
    if not SELECTOR.match(c):
        return False
    return c not in "\ufe0e\ufe0f" or len(before) != 1 or unicodedata.category(before) != "So"


# Combining marks (Mn, Me) stacked on one base beyond this are escaped, as is a mark with no base
# (first, or after what is escaped): "é" as e + U+0301 and Vietnamese "ệ" (two marks) stay as they
# are; a mark on nothing or a "zalgo" stack that spills over its neighbours is written out.
MARKS_SHOWN = 2


def _escaped(c: str) -> str:
    return c.encode("unicode_escape").decode("ascii")


def plain(text: str) -> str:
    """`text` as one line whose every character is seen: line breaks, other control characters and
    invisible ones (bidi overrides, zero-width marks, unusual spaces, blank-looking letters: `BLANK`,
    variation selectors on no symbol) written as escapes (`\\n`, `\\u202e`, `\\u3164`), and so are combining marks with no base or
    stacked beyond MARKS_SHOWN. What a confirmation shows of a name, a provider's answer or a request
    body."""
    # Nearly every text: below U+0300 (the first combining mark) there is no mark nor BLANK letter.
    if text.isprintable() and (text.isascii() or max(text) < "\u0300"):
        return text
    out: list[str] = []
    marks = -1  # combining marks on the current base; -1: there is no base
    before = ""  # the character before this one
    for c in text:
        if c in BLANK_CHARS or not c.isprintable() or _stray(c, before):
            marks = -1
            out.append(_escaped(c))
        elif unicodedata.category(c) in ("Mn", "Me"):
            marks = marks + 1 if marks >= 0 else -1
            out.append(c if 0 < marks <= MARKS_SHOWN else _escaped(c))
        else:
            marks = 0
            out.append(c)
        before = c
    return "".join(out)


def shown(value: Any) -> str:
    """A request body as a person reads it in a confirmation: compact JSON on one line, every field
    present, each long text cut in the middle with its length (`cut_text`), every unseen character
    escaped (`plain`)."""

    def cut(v: Any) -> Any:
        if isinstance(v, str):
            return cut_text(v)
        if isinstance(v, dict):
            return {k: cut(x) for k, x in v.items()}
        if isinstance(v, list):
            return [cut(x) for x in v]
        return v

    return plain(json.dumps(cut(value), ensure_ascii=False, default=str))


class MutationResult(Result):
    """What a mutating call did: the plan, and the outcome."""

    outcome: Literal["dry_run", "done", "replayed", "approval_pending"] = Field(
        description="dry_run: nothing was sent; done: the provider accepted it; "
        "replayed: same idempotency key as an earlier call, its result returned, nothing sent; "
        "approval_pending: nothing was sent yet, a person must approve at approval.url."
    )
    # Loosely typed on purpose: every mutating tool's output schema carries it, and tools/list has a
    # size budget. `approval` is an ApprovalLink: {id, url, expires_at, via, next_step}; `outcome` is
    # the status ("approval_pending").
    approval: Any = Field(None, description="The pending approval: {id, url, expires_at, via, next_step}.")
    plan: Plan
    resource: Resource | None = None
    detail: Any = Field(None, description="The provider's answer when it is not a resource (secrets masked).")
    journal_id: int | None = None


class JournalEntry(Model):
    id: int
    at: str
    provider: str
    operation: str
    effect: Effect
    target: str
    method: str | None = None
    path: str | None = None
    body: Any = None
    usd_per_hour: float | None = None
    outcome: Literal["unknown", "ok", "failed", "refused"]
    error: str | None = None
    resource_id: str | None = None
    idempotency_key: str | None = None
    sandbox: bool = False
    expires_at: str | None = None
    note: str | None = Field(None, description="What reconciliation found, for a row whose answer was lost.")
    actor: str | None = Field(None, description="Who asked for the change: a user, or gpu-guard.")
    confirmed_by: str | None = Field(None, description="Who confirmed it (over HTTP: the token's user).")
    expires_action: str | None = None
    uri: str | None = Field(None, description="The URI of the GPU resource this change made or touched.")


class LiveEntry(Addressable):
    """A billable resource the journal says this tool created (or may have: its outcome is unknown)
    and has not deleted."""

    provider: str
    resource_id: str | None = Field(None, description="None while the create's outcome is unknown.")
    journal_id: int | None = None
    outcome: Literal["ok", "unknown"] = "ok"
    kind: str | None = None
    name: str | None = None
    created_at: str
    usd_per_hour: float | None = None
    expires_at: str | None = None
    created_by: str
    sandbox: bool = False
    expires_action: Literal["delete", "stop"] = "delete"
    stopped: bool = Field(False, description="This tool's last stop or start of it was a stop.")


class ChatResult(Result):
    provider: str
    resource_id: str
    model: str
    content: str
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None


class Acknowledgement(Result):
    """A plain answer for operations with nothing else to say."""

    message: str


class SpendLine(Addressable):
    provider: str
    resource_id: str
    name: str | None = None
    kind: str | None = None
    status: Status
    usd_per_hour: float | None = Field(None, description="What it costs per hour now (0 when stopped).")
    price_source: str | None = Field(None, description="provider (its own figure) or journal (the plan's).")
    since: str | None = Field(None, description="When it was created.")
    hours: float | None = None
    accrued_usd: float | None = Field(None, description="Hourly cost x hours since creation: an upper bound.")
    expires_at: str | None = None
    tracked: bool = Field(description="Whether this tool's journal created it.")


class ProviderSpend(Model):
    provider: str
    resources: int
    usd_per_hour: float
    accrued_usd: float


class BudgetLine(Model):
    """One budget: its window, what was spent in it, what live resources have committed, what is left."""

    name: Literal["budget_usd_per_day", "budget_usd_total"]
    limit_usd: float
    since: str = Field(description="Start of the window (24 hours ago, or the budget's start).")
    spent_usd: float = Field(description="What this tool's resources cost in the window, from the journal.")
    committed_usd: float = Field(
        description="What live resources will cost until they expire (at most 24 hours; all of it with no expiry)."
    )
    left_usd: float = Field(description="limit - spent - committed: what a new plan may still cost.")


class Expiry(Model):
    provider: str
    resource_id: str | None
    name: str | None = None
    expires_at: str
    action: Literal["delete", "stop"]


class GuardStatus(Model):
    """When gpu-guard last made a pass, and whether it looks alive."""

    last_pass: str | None = None
    interval_seconds: float | None = None
    running: bool = Field(description="False when no pass was seen for three intervals (or ever).")
    message: str


class SpendPoint(Model):
    """Cumulative spend of one provider (or `total`) at one moment, from the journal."""

    at: str
    provider: str
    usd: float  # USD spent from the start of the period up to `at`


class SpendReport(Result):
    """What is live across providers and what it costs."""

    items: list[SpendLine]
    by_provider: list[ProviderSpend]
    total_usd_per_hour: float
    total_accrued_usd: float
    providers: list[ProviderStatus] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    budgets: list[BudgetLine] = Field(default_factory=list)
    expiries: list[Expiry] = Field(default_factory=list, description="The next expiries, soonest first.")
    guard: GuardStatus | None = None
    history_over: str | None = None
    history: list[SpendPoint] = Field(
        default_factory=list, description="With `over`: cumulative spend per provider and in total."
    )


class PricePoint(Model):
    """One offer's price from when it was first seen until it changed: stored when offers are fetched
    and the price differs from the last one kept for that offer, so each row is a step."""

    at: str = Field(description="First seen (UTC).")
    seen_at: str = Field(description="Last seen unchanged (UTC).")
    provider: str
    gpu: str
    gpu_count: int | None = None
    region: str | None = None
    region_id: str | None = None  # the provider's id when `region` is a name
    offer_id: str
    kind: Kind | None = None
    usd_per_hour: float | None = None
    usd_per_gpu_hour: float | None = None
    price: float | None = None  # in `currency`, when that is not USD
    currency: str | None = None
    price_estimated: bool = False

    @property
    def key(self) -> str:
        """The offer this price belongs to: one series per key."""
        region = self.region_id or self.region or ""
        parts = (self.provider, self.kind or "", self.offer_id, region, str(self.gpu_count or ""))
        return "|".join(parts)


class PriceHistory(Listing[PricePoint]):
    """Prices of one GPU model over a past period, per offer (provider, GPU, count, region), oldest first."""

    gpu: str
    over: str
    fetched_at: str | None = Field(None, description="When offers were last fetched (UTC).")


class OrphanReport(Result):
    """Resources the journal and the providers disagree about."""

    untracked: list[Resource] = Field(
        description="Live at a provider but not live in this tool's journal: never created through it, "
        "or deleted through it yet still there."
    )
    gone: list[LiveEntry] = Field(
        description="Created through this tool and never deleted, but no longer listed."
    )
    untracked_usd_per_hour: float
    providers: list[ProviderStatus] = Field(default_factory=list)


class Reconciled(Model):
    """What reconciliation learned about one journal row whose outcome was unknown."""

    journal_id: int
    provider: str
    operation: str
    target: str
    outcome: Literal["ok", "failed", "unknown"] = Field(description="The row's outcome now.")
    resource_id: str | None = None
    note: str


class ReconcileReport(Result):
    """Journal rows whose answer was lost, checked against what the providers hold."""

    items: list[Reconciled]
    unresolved: int = Field(description="Rows still unknown after this pass.")
