"""The operation declarations: each operation's name, description, input model, output and effect.

An operation is a name, a description written for an LLM reader, an input model, an output model
and an effect (`read`, `create`, `update`, `destroy`). Both fronts iterate the toolkit's registry:
a new operation (in `gpu_tools.unified` or in a provider file's `operations`) is a new MCP tool and
a new `%gpu` subcommand, with no front-end code. Reads run `handler`; mutations run `planner` and go
through the gate (`gpu_tools.gate`). This module depends only on models and errors, so providers can
declare their own operations with it; the toolkit assembles the registry.
"""

import difflib
import re
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Self, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from gpu_tools.context import Progress
from gpu_tools.durations import parse_duration
from gpu_tools.errors import InvalidInput, UnknownOperation
from gpu_tools.models import Effect, Kind, MutationResult, Plan, ProviderName, blank_in

if TYPE_CHECKING:
    from gpu_tools.context import Context

# An operation named in a message: `spend` in backticks, or a bare name with an underscore.
_REFERENCE = re.compile(r"`([a-z][a-z0-9_]*)`|(?<![\w./-])([a-z][a-z0-9]*(?:_[a-z0-9]+)+)(?![\w/-])")


# ---- inputs ---------------------------------------------------------------------------------
MAX_ID_LENGTH = 200
# Anything that could leave a URL path segment or change how a server parses it: separators, query
# and fragment marks, percent-escapes, path parameters, whitespace and control characters.
_ID_BAD = re.compile(r"[\s\x00-\x1f\x7f\x85/\\?#%;]")


def check_id(name: str, value: str) -> str:
    """An id goes into a URL path: refuse anything that could leave its path segment."""
    if len(value) > MAX_ID_LENGTH:
        raise ValueError(f"is {len(value)} characters long; ids are at most {MAX_ID_LENGTH}")
    if value in (".", "..") or _ID_BAD.search(value):
        raise ValueError(
            "is not a valid id (no /, \\, ?, #, %, ;, spaces or control characters; not . or ..)"
        )
    return value


# Bounds of arguments whose provider documents none; each is stated in the argument's schema, so an
# absurd value (a 3 MB description, 10**30 replicas) is refused before anything is asked or sent.
NAME_MAX = 200  # names, ids, tags and other short values
TEXT_MAX = 4000  # descriptions, commands, options
URL_MAX = 2048  # URLs and image references
MAX_REPLICAS = 64  # replicas (instances) of one resource
MAX_GPUS = 16  # GPUs per replica
INT_ID_MAX = 2**53 - 1  # integer ids and markers: what JSON carries exactly
DURATION_MAX = 32  # a duration as people write it (`1.5d`, `90 m`): a number and a unit
ShortText = Annotated[str, StringConstraints(max_length=NAME_MAX)]
LongText = Annotated[str, StringConstraints(max_length=TEXT_MAX)]
# Every text id an operation takes (`resource_id`, `hardware_id`, `api_key_ids` items...): its schema
# says check_id's bound, which `OpInput` also checks (with the characters) for every `*_id` field.
ResourceId = Annotated[str, StringConstraints(max_length=MAX_ID_LENGTH)]


def _positive_duration(value: str | None) -> str | None:
    if value is not None and parse_duration(value) <= timedelta(0):
        raise ValueError("must be positive")
    return value


# A positive duration as people write it, e.g. 7d: a past period, a lifetime.
Duration = Annotated[str, StringConstraints(max_length=DURATION_MAX), AfterValidator(_positive_duration)]


class OpInput(BaseModel):
    """Base of every operation's input. `positional` names the fields a magic takes positionally.

    Unknown arguments are refused (never dropped), every field named `*_id` or `*_ids` is checked
    as an id before anything is sent, and types are strict: a boolean is never a number (`true` is not
    1 GPU) nor a number a boolean, and text is never a number."""

    model_config = ConfigDict(extra="forbid", defer_build=True, strict=True)
    positional: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="after")
    def _ids(self) -> Self:
        for name in type(self).model_fields:
            if not name.endswith(("_id", "_ids")):
                continue
            value = getattr(self, name)
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, str):
                    try:
                        check_id(name, item)
                    except ValueError as exc:
                        raise PydanticCustomError(
                            "invalid_id", "{field} {why}", {"field": name, "why": str(exc)}
                        ) from None
        return self


# Characters that reorder how the text around them is shown: bidi marks, embeddings, overrides and
# isolates. None in anything sent: a confirmation shows them escaped, a provider's console would obey.
_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# Line breaks and other control characters: none in a one-line value (a name, an image, an id); a
# long text (a description, a command: up to TEXT_MAX) may hold tabs and line breaks.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_CONTROL_IN_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")


def _long(annotation: Any, metadata: Iterable[Any] = ()) -> bool:
    """Whether a text of this declared type may span lines: its bound is a long text's (TEXT_MAX)."""
    found = [*metadata, *getattr(annotation, "__metadata__", ())]
    return any((getattr(m, "max_length", None) or 0) >= TEXT_MAX for m in found)


def _member(annotation: Any, origin: type, arity: int) -> tuple[Any, ...]:
    """The type arguments of `origin` (list, dict) in `annotation`, itself or a member of its union."""
    for candidate in (annotation, *get_args(annotation)):
        if get_origin(candidate) is origin:
            return get_args(candidate)
    return (None,) * arity


def _texts(value: Any, annotation: Any, long: bool) -> Iterator[tuple[str, bool]]:
    """Every text in an argument's value, with whether its declared type lets it span lines: the value
    itself, list items, mapping keys and values (an env var's value may be a PEM), a model's fields."""
    if isinstance(value, str):
        yield value, long
    elif isinstance(value, list | tuple):
        (item,) = _member(annotation, list, 1)
        for each in value:
            yield from _texts(each, item, _long(item))
    elif isinstance(value, dict):
        key, item = _member(annotation, dict, 2)
        for k, v in value.items():
            yield from _texts(k, key, _long(key))
            yield from _texts(v, item, _long(item))
    elif isinstance(value, BaseModel):
        for name, info in type(value).model_fields.items():
            yield from _texts(getattr(value, name), info.annotation, _long(info.annotation, info.metadata))


class MutationInput(OpInput):
    """Base of every operation that changes something: what it sends is text a person can read in
    the confirmation as it will be sent, so no argument may hide a line break or a blank-looking letter
    (a one-line value: `blank_in`) or reorder what is shown (a bidi control): such text is refused,
    naming the argument."""

    dry_run: bool = Field(False, description="Only return the plan; send nothing.")

    @model_validator(mode="after")
    def _visible_text(self) -> Self:
        for name, info in type(self).model_fields.items():
            for text, long in _texts(
                getattr(self, name), info.annotation, _long(info.annotation, info.metadata)
            ):
                if found := _BIDI.search(text):
                    why = "holds {char}, which reorders how text is shown"
                elif found := (_CONTROL_IN_TEXT if long else _CONTROL).search(text):
                    why = "holds {char}, a control character" if long else "must be one line: it holds {char}"
                elif not long and (found := blank_in(text)):
                    why = "holds {char}, a character that shows as blank"
                else:
                    continue
                char = f"U+{ord(found if isinstance(found, str) else found.group()):04X}"
                raise PydanticCustomError("visible_text", "{field} " + why, {"field": name, "char": char})
        return self


class CreateInput(MutationInput):
    expires_in: Duration | None = Field(
        None,
        description="Lifetime, e.g. 2h or 3d (default: default_expires_in).",
    )
    expires_action: Literal["delete", "stop"] = Field("delete", description="What is done at expiry.")
    idempotency_key: str | None = Field(
        None,
        description="Unique to this intent: a repeat returns the first result.",
        max_length=200,
    )


class ProviderFilter(OpInput):
    provider: ProviderName | None = Field(None, description="Only this provider.")


def _split_providers(value: Any) -> Any:
    if isinstance(value, str):  # "sesterce,netmind"
        return [part.strip().lower() for part in value.split(",") if part.strip()]
    return value or None


# One provider or several ("sesterce,netmind" also works).
Providers = Annotated[list[ProviderName] | None, BeforeValidator(_split_providers)]


class SpendInput(ProviderFilter):
    over: Duration | None = Field(None, description="Spend over time for this past period, e.g. 7d.")


class PriceHistoryInput(OpInput):
    gpu: str = Field(description="GPU model, e.g. H100.", min_length=1, max_length=NAME_MAX)
    over: Duration = Field("30d", description="How far back, e.g. 7d.")
    provider: Providers = Field(None, description="Only these providers.", max_length=16)
    region: str | None = Field(None, description="Region id or name.", max_length=NAME_MAX)


class ResourceRef(OpInput):
    positional: ClassVar[tuple[str, ...]] = ("provider", "resource_id")
    provider: ProviderName = Field(description="Its provider.")
    resource_id: ResourceId = Field(description="From list_resources.", min_length=1)


class NoInput(OpInput):
    pass


class VerboseInput(OpInput):
    verbose: bool = Field(False, description="Add provider-specific details.")


class ListInput(ProviderFilter, VerboseInput):
    pass


class ListOffersInput(ListInput):
    provider: Providers = Field(None, description="Only these providers.", max_length=16)  # type: ignore[assignment]
    kind: Literal["endpoint", "container", "instance"] | None = Field(
        None, description="What the offer rents."
    )
    gpu: str | None = Field(None, description="GPU model or provider GPU name.", max_length=NAME_MAX)
    region: str | None = Field(None, description="Region id or name.", max_length=NAME_MAX)
    min_gpu_count: int | None = Field(None, ge=1, description="Min GPUs per offer.", le=1024)
    min_gpu_memory_gb: float | None = Field(None, gt=0, description="Min memory per GPU (GB).", le=10_000)
    max_usd_per_gpu_hour: float | None = Field(
        None, gt=0, description="At most this USD per GPU-hour.", le=10_000
    )
    max_usd_per_hour: float | None = Field(None, gt=0, description="Max USD/h.", le=1_000_000)
    max_gpu_count: int | None = Field(None, ge=1, description="Max GPUs.", le=1024)
    available_only: bool = Field(False, description="Only offers available now.")
    refresh: bool = Field(False, description="Ask the providers again, not the cache.")


class ListResourcesInput(ListInput):
    status: Literal["pending", "running", "stopped", "failed", "deleting", "unknown"] | None = Field(
        None, description="Only resources in this normalized status."
    )


class GetResourceInput(ResourceRef):
    reveal_secrets: bool = Field(
        False, description="Show passwords and tokens the provider returns (masked by default)."
    )


# How long one wait_for_resource call waits by default: an answer comes back well before the 60 s
# after which common MCP clients (the TypeScript SDK's default) give up on a request.
WAIT_DEFAULT_SECONDS = 45.0


class WaitInput(ResourceRef):
    until: Literal["running", "stopped", "deleted"] = Field("running", description="The state to wait for.")
    timeout_seconds: float = Field(
        WAIT_DEFAULT_SECONDS,
        gt=0,
        le=3600,
        description="Answer within this many seconds, reached or not; up to 3600 for clients that reset "
        "their timeout on progress.",
    )
    poll_seconds: float = Field(5, ge=0.05, le=60, description="Seconds between two looks.")


class HistoryInput(OpInput):
    limit: int = Field(50, ge=1, le=1000, description="Newest entries to return.")
    provider: ProviderName | None = Field(None, description="Only this provider.")
    outcome: Literal["unknown", "ok", "failed", "refused"] | None = Field(
        None, description="Only entries with this outcome."
    )
    user: str | None = Field(
        None,
        description="Only changes this user (an http_tokens name, or gpu-guard) asked for or confirmed.",
        max_length=NAME_MAX,
    )


class ChatInput(ResourceRef):
    message: str = Field(description="The user message to send.", min_length=1, max_length=100_000)
    system: str | None = Field(None, description="Optional system prompt.", max_length=100_000)
    max_tokens: int = Field(256, ge=1, le=32768, description="Most tokens the answer may have.")
    temperature: float | None = Field(None, ge=0, le=2, description="Sampling temperature.")


class UpdateInput(ResourceRef, MutationInput):
    replicas: int | None = Field(
        None, ge=0, description="Fixed number of replicas / instances.", le=MAX_REPLICAS
    )
    min_replicas: int | None = Field(
        None, ge=0, description="Autoscaling minimum (0 scales to zero where allowed).", le=MAX_REPLICAS
    )
    max_replicas: int | None = Field(None, ge=1, description="Autoscaling maximum.", le=MAX_REPLICAS)
    name: str | None = Field(None, description="New display name.", max_length=NAME_MAX)
    description: str | None = Field(None, description="New description.", max_length=TEXT_MAX)
    gpu_type: str | None = Field(
        None, description="New GPU type, as the provider names it.", max_length=NAME_MAX
    )
    gpu_count: int | None = Field(None, ge=1, description="New GPUs per replica.", le=MAX_GPUS)


class StopInput(ResourceRef, MutationInput):
    grace_period_seconds: int | None = Field(
        None,
        ge=0,
        le=3600,
        description="NeoLink only: seconds to exit before forced off (default 10).",
    )
    snapshot_image_name: str | None = Field(
        None,
        min_length=1,
        description="NeoLink only: save a snapshot image of this name.",
        max_length=NAME_MAX,
    )
    snapshot_tag: str | None = Field(
        None,
        min_length=1,
        description="NeoLink only: the snapshot's tag.",
        max_length=NAME_MAX,
    )

    # Arguments only providers with the "stop_snapshot" capability accept.
    snapshot_fields: ClassVar[tuple[str, ...]] = (
        "grace_period_seconds",
        "snapshot_image_name",
        "snapshot_tag",
    )


class StartInput(ResourceRef, MutationInput):
    pass


class DeleteInput(ResourceRef, MutationInput):
    pass


class ReapInput(MutationInput):
    action: Literal["delete", "stop"] | None = Field(
        None,
        description="Default: each one's expires_action.",
    )
    provider: ProviderName | None = Field(None, description="Only this provider.")


# ---- the registry ---------------------------------------------------------------------------
# Said once in each mutating operation's description by the fronts that ask (never in read-only mode).
CONFIRMATION = "Asks the user to confirm the plan first."
# Tool sets: which operations a front lists. `reads` and `lifecycle` work with every provider; a
# provider's own set (named after it: its creates) is on by default when it has credentials and is
# allowed; its other sets (Sesterce registries and full updates, NetMind Rent GPU containers) are one
# setting away. Each provider's declaration adds its sets here as it registers.
TOOLSETS: dict[str, str] = {
    "reads": "providers, offers, price history, templates, regions, resources, waiting, journal, spend, orphans, chat",
    "lifecycle": "update, stop, start, delete and reap resources at any provider",
}
# The sets every server lists unless told otherwise; provider sets are added per provider.
BASE_TOOLSETS = ("reads", "lifecycle")


def toolset_provider(name: str) -> str | None:
    """The provider a tool set belongs to (`sesterce_admin` -> `sesterce`), or None."""
    head = name.split("_", 1)[0]
    return None if name in BASE_TOOLSETS else head


Handler = Callable[["Context", Any, Progress | None], Awaitable[BaseModel]]
Planner = Callable[["Context", Any], Awaitable[Plan]]


@dataclass(frozen=True)
class Operation:
    name: str
    title: str
    description: str
    input: type[OpInput]
    effect: Effect
    output: type[BaseModel] = MutationResult
    handler: Handler | None = None
    planner: Planner | None = None
    aliases: tuple[str, ...] = ()
    provider: str | None = None
    open_world: bool = True
    examples: tuple[str, ...] = field(default=())
    # The tool set this operation belongs to (see TOOLSETS); by default `reads` or `lifecycle` for a
    # unified operation, and the provider's own set for a provider operation.
    toolset: str = ""
    # Whether it may destroy state (MCP's destructiveHint): by default a create is additive, and
    # any update or destroy may destroy something (a stop loses memory, a scale-down replicas). An
    # update that only adds (a start) says False.
    destructive: bool | None = None

    def __post_init__(self) -> None:
        if self.destructive is None and self.mutating:
            object.__setattr__(self, "destructive", self.effect != "create")
        if not self.toolset:
            default = self.provider or ("lifecycle" if self.mutating else "reads")
            object.__setattr__(self, "toolset", default)
        # A provider's operations are checked against its declared sets when it registers.
        if self.provider is None and self.toolset not in TOOLSETS:
            raise ValueError(f"operation {self.name}: unknown tool set {self.toolset!r}")

    @property
    def mutating(self) -> bool:
        return self.effect != "read"

    @property
    def creates(self) -> str | None:
        """The kind a create makes, from the `<provider>_create_<kind>` naming every create follows."""
        if self.effect != "create":
            return None
        kind = self.name.rsplit("_", 1)[-1]
        return kind if kind in get_args(Kind) else None

    def parse(self, args: dict[str, Any] | None) -> Any:
        """Validate arguments strictly: unknown ones are refused with the closest valid name."""
        try:
            return self.input.model_validate(args or {})
        except ValidationError as exc:
            raise InvalidInput(f"{self.name}: {short_validation_message(exc, self.input)}") from None


def closest_field(name: str, model: type[BaseModel]) -> str | None:
    """The valid argument an unknown one most likely meant: `dryRun`, `dry-run`, `DRY_RUN` -> dry_run."""
    fields = list(model.model_fields)

    def fold(text: str) -> str:
        return re.sub(r"[^a-z0-9]", "", text.lower())

    folded = {fold(f): f for f in fields}
    if fold(name) in folded:
        return folded[fold(name)]
    match = difflib.get_close_matches(fold(name), list(folded), n=1, cutoff=0.6)
    return folded[match[0]] if match else None


def short_validation_message(exc: ValidationError, model: type[BaseModel] | None = None) -> str:
    """One short sentence per field: no pydantic dump, no links to its docs."""
    parts = []
    errors = sorted(exc.errors(include_url=False), key=lambda e: e["type"] != "extra_forbidden")
    for err in errors:
        loc = ".".join(str(p) for p in err["loc"]) or "input"
        kind = err["type"]
        if kind == "extra_forbidden":
            near = (
                closest_field(str(err["loc"][-1]), model)
                if model is not None and len(err["loc"]) == 1
                else None
            )
            parts.append(f"unknown argument {loc!r}" + (f" (did you mean {near!r}?)" if near else ""))
            continue
        if kind == "missing":
            msg = "is required"
        elif kind == "literal_error" and "expected" in err.get("ctx", {}):
            msg = f"must be one of {err['ctx']['expected']}"
        elif kind == "invalid_id":
            loc, msg = str(err["ctx"]["field"]), str(err["ctx"]["why"])
        else:
            msg = err["msg"][:1].lower() + err["msg"][1:]
            msg = msg.removeprefix("value error, ").removeprefix("assertion failed, ")
        parts.append(f"{loc} {msg}")
    return "; ".join(parts) + "."


class Registry:
    def __init__(self, operations: list[Operation]) -> None:
        self._ops: dict[str, Operation] = {}
        for op in operations:
            if op.name in self._ops:
                raise ValueError(f"operation {op.name} declared twice")
            self._ops[op.name] = op

    def __iter__(self):
        return iter(self._ops.values())

    def names(self) -> list[str]:
        return list(self._ops)

    def words(self, text: str, name_of: Callable[[str], str | None]) -> str:
        """`text` with each operation it refers to named by a front: `name_of("wait_for_resource")`
        may say `%gpu wait`. Core messages refer to an operation by its name, in backticks or bare
        when the name has an underscore (`list_resources`, `spend`); the MCP front shows them as
        they are, since its tools carry those names."""

        def name(match: re.Match[str]) -> str:
            op = match.group(1) or match.group(2)
            if op not in self._ops:
                return match.group(0)
            return name_of(op) or match.group(0)

        return _REFERENCE.sub(name, text)

    def get(self, name: str) -> Operation:
        try:
            return self._ops[name]
        except KeyError:
            raise UnknownOperation(f"no operation named {name!r}") from None
