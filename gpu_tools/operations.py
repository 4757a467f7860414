"""The operation declarations: each operation's name, description, input model, output and effect.

An operation is a name, a description written for an LLM reader, an input model, an output model
and an effect (`read`, `create`, `update`, `destroy`). Both fronts iterate the toolkit's registry:
a new operation (in `gpu_tools.unified` or in a provider file's `operations`) is a new MCP tool and
a new `%gpu` subcommand, with no front-end code. Reads run `handler`; mutations run `planner` and go
through the gate (`gpu_tools.gate`). This module depends only on models and errors, so providers can
declare their own operations with it; the toolkit assembles the registry.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gpu_tools.errors import InvalidInput, UnknownOperation
from gpu_tools.models import Effect, Kind, MutationResult, Plan, ProviderName

if TYPE_CHECKING:
    from gpu_tools.toolkit import Toolkit

Progress = Callable[[float, float | None, str], Awaitable[None]]
DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")


# ---- inputs ---------------------------------------------------------------------------------
class OpInput(BaseModel):
    """Base of every operation's input. `positional` names the fields a magic takes positionally."""

    model_config = ConfigDict(extra="forbid")
    positional: ClassVar[tuple[str, ...]] = ()


class MutationInput(OpInput):
    dry_run: bool = Field(
        False, description="Return the plan (request, cost, reversibility) and send nothing."
    )


def parse_duration(text: str) -> timedelta:
    """`90s`, `30m`, `2h`, `1.5d`, `1w` -> timedelta."""
    match = DURATION.fullmatch(text.strip().lower())
    if not match:
        raise ValueError("use a number and a unit: s, m, h, d or w (e.g. 2h)")
    value, unit = float(match.group(1)), match.group(2)
    return timedelta(seconds=value * {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[unit])


class CreateInput(MutationInput):
    expires_in: str | None = Field(
        None,
        description="Optional lifetime such as 2h or 3d: after it, reap_expired stops or deletes the resource.",
    )
    idempotency_key: str | None = Field(
        None,
        description="Any string unique to this intent. Repeating a call with the same key returns the "
        "first result instead of creating a second resource.",
        max_length=200,
    )

    @field_validator("expires_in")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None and parse_duration(value) <= timedelta(0):
            raise ValueError("must be positive")
        return value


class ProviderFilter(OpInput):
    provider: ProviderName | None = Field(None, description="Only this provider (default: all configured).")


class ResourceRef(OpInput):
    positional: ClassVar[tuple[str, ...]] = ("provider", "resource_id")
    provider: ProviderName = Field(description="The provider that holds the resource.")
    resource_id: str = Field(
        description="The resource_id exactly as list_resources returned it.", min_length=1
    )


class NoInput(OpInput):
    pass


class ListOffersInput(ProviderFilter):
    kind: Kind | None = Field(None, description="endpoint, container or instance.")
    gpu: str | None = Field(None, description="GPU model or the provider's GPU name, case-insensitive.")
    region: str | None = None
    min_gpu_count: int | None = Field(None, ge=1)
    min_gpu_memory_gb: float | None = Field(None, gt=0)
    max_usd_per_gpu_hour: float | None = Field(None, gt=0)
    available_only: bool = False
    refresh: bool = Field(
        False, description="Ask the providers again instead of using offers cached minutes ago."
    )


class ListResourcesInput(ProviderFilter):
    status: Literal["pending", "running", "stopped", "failed", "deleting", "unknown"] | None = None


class GetResourceInput(ResourceRef):
    reveal_secrets: bool = Field(
        False, description="Show passwords and tokens the provider returns (masked by default)."
    )


class WaitInput(ResourceRef):
    until: Literal["running", "stopped", "deleted"] = Field("running", description="The state to wait for.")
    timeout_seconds: float = Field(600, gt=0, le=3600, description="Give up after this long.")
    poll_seconds: float = Field(5, ge=0.05, le=60)


class HistoryInput(OpInput):
    limit: int = Field(50, ge=1, le=1000)
    provider: ProviderName | None = None
    outcome: Literal["unknown", "ok", "failed", "refused"] | None = None


class ChatInput(ResourceRef):
    message: str = Field(description="The user message to send.", min_length=1)
    system: str | None = Field(None, description="Optional system prompt.")
    max_tokens: int = Field(256, ge=1, le=32768)
    temperature: float | None = Field(None, ge=0, le=2)


class UpdateInput(ResourceRef, MutationInput):
    replicas: int | None = Field(None, ge=0, description="Fixed number of replicas / instances.")
    min_replicas: int | None = Field(None, ge=0)
    max_replicas: int | None = Field(None, ge=1)
    name: str | None = None
    description: str | None = None
    gpu_type: str | None = None
    gpu_count: int | None = Field(None, ge=1)


class StopInput(ResourceRef, MutationInput):
    grace_period_seconds: int | None = Field(
        None,
        ge=0,
        le=3600,
        description="NeoLink only: seconds processes get to exit before the instance is forced off "
        "(default 10). Other providers refuse it.",
    )
    snapshot_image_name: str | None = Field(
        None,
        min_length=1,
        description="NeoLink only: save the instance as an image with this name while powering off. "
        "Other providers refuse it.",
    )
    snapshot_tag: str | None = Field(
        None,
        min_length=1,
        description="NeoLink only: version tag of the snapshot image (needs snapshot_image_name).",
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
    action: Literal["delete", "stop"] = Field(
        "delete", description="What to do with each expired resource: delete it, or only stop it."
    )
    provider: ProviderName | None = Field(None, description="Only this provider's resources.")


# ---- the registry ---------------------------------------------------------------------------
Handler = Callable[["Toolkit", Any, Progress | None], Awaitable[BaseModel]]
Planner = Callable[["Toolkit", Any], Awaitable[Plan]]


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

    @property
    def mutating(self) -> bool:
        return self.effect != "read"

    def parse(self, args: dict[str, Any] | None) -> Any:
        try:
            return self.input.model_validate(args or {})
        except ValidationError as exc:
            raise InvalidInput(f"{self.name}: {short_validation_message(exc)}") from None


def short_validation_message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "input"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown argument"
        elif err["type"] == "literal_error" and "expected" in err.get("ctx", {}):
            msg = f"must be one of {err['ctx']['expected']}"
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts)


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

    def get(self, name: str) -> Operation:
        try:
            return self._ops[name]
        except KeyError:
            raise UnknownOperation(f"no operation named {name!r}") from None
