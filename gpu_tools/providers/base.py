"""What every provider adapter is: capabilities, an HTTP client, and mappings.

Its capabilities are the methods it overrides (`CAPABILITY_METHODS`), never a second list kept in
step by hand; its name, title, settings and tool sets come from its declaration
(`gpu_tools.providers.declare.ProviderSpec`).

An adapter never sends a mutating request itself. For each mutation it builds a `Plan` holding
the exact request and a `finish` function that turns the provider's answer into a result; the
gate confirms, journals and sends. Reads are plain async methods.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, Self, TypeVar
from urllib.parse import urlencode

from pydantic import BaseModel

from gpu_tools.errors import GpuToolsError, InvalidInput, Unsupported
from gpu_tools.http import ProviderHTTP
from gpu_tools.journal import Journal
from gpu_tools.models import (
    ChatResult,
    Clock,
    Offer,
    Plan,
    Region,
    Resource,
    Status,
    Template,
    WireRequest,
    parse_time,
    utc_now,
)
from gpu_tools.providers import wire
from gpu_tools.secrets import mask_secrets
from gpu_tools.settings import Settings, cache_dir
from gpu_tools.shelf import Shelf, account_file

if TYPE_CHECKING:
    import httpx

    from gpu_tools.context import Context
    from gpu_tools.operations import ChatInput, Operation, StopInput, UpdateInput

W = TypeVar("W", bound=BaseModel)

# Every capability a unified operation may need, in display order, and the method an adapter
# overrides to have it (`stop_snapshot` is a stop that takes `snapshot`: `stop_takes_snapshot`).
CAPABILITY_METHODS = {
    "offers": "list_offers",
    "templates": "list_templates",
    "regions": "list_regions",
    "resources": "list_resources",
    "update": "plan_update",
    "stop": "plan_stop",
    "stop_snapshot": "plan_stop",
    "start": "plan_start",
    "delete": "plan_delete",
    "chat": "chat",
}
CAPABILITIES = tuple(CAPABILITY_METHODS)


class Truncated(GpuToolsError):
    """A listing the provider cut short. It carries what was listed; a fan-out reports the provider
    as `partial` with this message, and any other caller gets an error instead of a short list."""

    kind = "truncated"

    def __init__(self, items: list[Any], message: str, *, provider: str) -> None:
        super().__init__(message, provider=provider)
        self.items = items


CLOCK_SKEW = timedelta(minutes=2)  # between this machine's clock and a provider's


class Ambiguous(GpuToolsError):
    """Reconciliation found more than one resource that could be the one a lost create made."""

    kind = "ambiguous"


class DeclaredSetting(Protocol):
    name: str
    secret: bool
    hint: str


class Declared(Protocol):
    """What an adapter reads of its declaration (`gpu_tools.providers.declare.ProviderSpec`, which
    imports this module: the adapter names only what it needs, so the two import one way)."""

    @property
    def credentials(self) -> tuple[DeclaredSetting, ...]: ...


class Provider(ABC):
    """Base class of the adapters. Subclasses override the methods of what they can do; their
    declaration (`ProviderSpec`) names them and brings their settings when it registers."""

    # Set by the provider's declaration when it registers.
    spec: ClassVar[Declared]
    name: ClassVar[str]
    title: ClassVar[str]
    # Derived from the methods a subclass overrides (see CAPABILITY_METHODS).
    capabilities: ClassVar[frozenset[str]] = frozenset()
    # A stop that can keep a snapshot (`stop_resource snapshot=...`).
    stop_takes_snapshot: ClassVar[bool] = False
    # Field names whose values this provider returns as secrets, beyond `secrets.SECRET_KEYS`.
    secret_keys: ClassVar[frozenset[str]] = frozenset()
    # Fields whose every value is a secret, their names kept (Sesterce's `envs`).
    secret_maps: ClassVar[frozenset[str]] = frozenset()
    # Provider-only operations (creates, registries, auths...), declared next to the adapter.
    operations: ClassVar[list[Operation]] = []

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        overrides = {
            cap
            for cap, method in CAPABILITY_METHODS.items()
            if getattr(cls, method) is not getattr(Provider, method)
        }
        if not cls.stop_takes_snapshot:
            overrides.discard("stop_snapshot")
        elif "stop" not in overrides:
            raise TypeError(f"{cls.__name__} takes a snapshot on stop but does not override plan_stop")
        if ("resources" in overrides) != (cls.get_resource is not Provider.get_resource):
            raise TypeError(f"{cls.__name__} must override both list_resources and get_resource, or neither")
        cls.capabilities = frozenset(overrides)

    def __init__(
        self,
        settings: Settings,
        transport: httpx.AsyncBaseTransport | None = None,
        journal: Journal | None = None,
    ) -> None:
        self.settings = settings
        # What this tool created, for providers that cannot list everything they hold.
        self.journal = journal
        # The wall clock: the journal's (the toolkit's one clock), so kept prices age with it.
        self.now: Clock = journal.now if journal is not None else utc_now
        self.http = ProviderHTTP(
            self.name,
            self.base_url(),
            self.auth_headers() if self.is_configured(settings) else {},
            timeout=settings.http_timeout,
            retries=settings.http_retries,
            transport=transport,
        )

    @classmethod
    def of(cls, tk: Context) -> Self:
        """This provider's adapter in `tk`, checked for credentials and policy, typed as the subclass
        (what a provider-only operation's handler or planner calls)."""
        adapter = tk.adapter(cls.name)
        if not isinstance(adapter, cls):
            raise TypeError(f"the {cls.name} adapter is a {type(adapter).__name__}, not a {cls.__name__}")
        return adapter

    # ---- configuration (from the declaration) ---------------------------------------------------
    @classmethod
    def is_configured(cls, settings: Settings) -> bool:
        """Every credential the declaration names is set (a secret one may be any string)."""
        for setting in cls.spec.credentials:
            value = getattr(settings, setting.name, None)
            if value is None or (not setting.secret and not value):
                return False
        return True

    def base_url(self) -> str:
        return str(getattr(self.settings, f"{self.name}_base_url"))

    def credential(self, name: str) -> str:
        """The configured value of the credential setting `name` (auth_headers reads them)."""
        value = getattr(self.settings, name, None)
        if value is None:
            raise RuntimeError(f"{self.title}: {name} is not set")  # auth_headers runs only when configured
        return value.get_secret_value() if hasattr(value, "get_secret_value") else str(value)

    @abstractmethod
    def auth_headers(self) -> dict[str, str]: ...

    def config_hint(self) -> str:
        """How to configure this provider, for NotConfigured errors."""
        creds = self.spec.credentials
        envs = " and ".join(s.name.upper() + (f" ({s.hint})" if s.hint else "") for s in creds)
        keys = " and ".join(s.name for s in creds)
        if len(creds) == 1:
            return f"Set {envs} (or {keys} in config.toml), or use the sandbox."
        return f"Set {envs}, or {keys} in config.toml, or use the sandbox."

    # ---- helpers for subclasses -------------------------------------------------------------
    @functools.cached_property
    def shelf(self) -> Shelf:
        """Where this provider account's slowly changing data is kept between processes (see
        `gpu_tools.shelf`): the sandbox has one file of its own, whatever port it listens on."""
        if self.settings.sandbox:
            return Shelf(cache_dir() / "catalog" / f"{self.name}-sandbox.json")
        headers = self.auth_headers() if self.is_configured(self.settings) else {}
        credentials = [f"{k}={v}" for k, v in sorted(headers.items())]
        return Shelf(account_file(cache_dir() / "catalog", self.name, self.base_url(), *credentials))

    def mask(self, value: Any) -> Any:
        """`value` with this provider's secrets masked (see `gpu_tools.secrets`)."""
        return mask_secrets(value, self.secret_keys, self.secret_maps)

    def parse(self, model: type[W], body: Any, source: str, at: tuple[int | str, ...] = ()) -> W:
        """An answer of this provider read as `model` (see `gpu_tools.providers.wire`); `source` is the
        request it answers, e.g. `GET /v1/rentgpu/auths/`."""
        return wire.parse(model, body, provider=self.name, source=source, at=at)

    def parse_list(self, model: type[W], body: Any, source: str, at: tuple[int | str, ...] = ()) -> list[W]:
        return wire.parse_list(model, body, provider=self.name, source=source, at=at)

    def expect_list(self, body: Any, source: str, at: tuple[int | str, ...] = ()) -> list[Any]:
        return wire.expect_list(body, provider=self.name, source=source, at=at)

    def unsupported(self, what: str, instead: str | None = None) -> Unsupported:
        return Unsupported(f"{self.title} does not support {what}.", provider=self.name, hint=instead)

    def refuse_no_op(self, operation: str, status: Status, what: str, raw: str | None = None) -> None:
        """Refuse a start of what already runs (or is on its way) and a stop of what is already stopped,
        before anyone is asked: the send would change nothing or be refused by the provider, and the
        question would show a cost that adds nothing."""
        shown = status if not raw or raw.lower() == status else f"{status} ({raw})"
        if operation == "start_resource" and status in ("running", "pending", "deleting"):
            raise InvalidInput(
                f"{self.title} {what} is {shown}: start_resource starts a stopped one.", provider=self.name
            )
        if operation == "stop_resource" and status in ("stopped", "deleting"):
            raise InvalidInput(f"{self.title} {what} is {shown}: nothing to stop.", provider=self.name)

    def reject_fields(self, data: Any, fields: Iterable[str], what: str) -> None:
        """Refuse arguments this provider cannot honour, naming them."""
        given = [f for f in fields if getattr(data, f, None) is not None]
        if given:
            raise InvalidInput(
                f"{self.title} {what} does not accept: {', '.join(given)}.", provider=self.name
            )

    def plan(
        self,
        *,
        operation: str,
        action: str,
        target: str,
        request: WireRequest,
        finish: Callable[[Any], Awaitable[Any]],
        reversible: bool,
        reversibility: str,
        usd_per_hour: float | None = None,
        usd_per_hour_max: float | None = None,
        price_source: str | None = None,
        gpus: int | None = None,
        gpu_name: str | None = None,
        warnings: list[str] | None = None,
    ) -> Plan:
        plan = Plan(
            provider=self.name,
            operation=operation,
            action=action,
            target=target,
            method=request.method,
            path=request.path + ("?" + urlencode(request.params) if request.params else ""),
            body=self.mask(request.json_body),
            usd_per_hour=usd_per_hour,
            usd_per_hour_max=usd_per_hour_max,
            price_source=price_source,
            gpus=gpus,
            gpu_name=gpu_name,
            reversible=reversible,
            reversibility=reversibility,
            warnings=warnings or [],
            sandbox=self.settings.sandbox,
        )
        plan._request = request
        plan._finish = finish
        return plan

    # ---- reads (override what the capabilities declare) ------------------------------------
    async def list_offers(self, *, refresh: bool = False) -> list[Offer]:
        """Offers now; `refresh` also refetches what the adapter keeps longer (prices, catalogues)."""
        raise self.unsupported("listing offers")

    async def list_templates(self) -> list[Template]:
        raise self.unsupported("listing templates")

    async def list_regions(self) -> list[Region]:
        raise self.unsupported("listing regions")

    async def list_resources(self) -> list[Resource]:
        raise self.unsupported("listing resources")

    async def get_resource(self, resource_id: str, *, reveal_secrets: bool = False) -> Resource:
        raise self.unsupported("reading a resource")

    async def chat(self, data: ChatInput) -> ChatResult:
        raise self.unsupported("chat")

    def can_stop(self, kind: str | None) -> bool:
        """Whether a resource of this kind can be stopped (and started again) here."""
        return "stop" in self.capabilities

    async def find_created(self, row: dict[str, Any]) -> Resource | None:
        """The resource a create whose answer was lost made, if the provider holds one: the one
        resource in the provider's own list with the name the create carried, unknown to the journal,
        and created no earlier than the request was sent. None when the provider answered and holds
        no such resource; `Ambiguous` when it cannot tell ours from one made elsewhere."""
        if row.get("kind") not in (None, "endpoint", "container", "instance"):
            raise self.unsupported(f"finding a {row['kind']} by name")
        sent = datetime.fromisoformat(row["at"])
        named = [r for r in await self.list_resources() if r.name == row["target"]]
        # Only the few with this name are looked up in the journal, each by its index, however long
        # the history is.
        candidates = {(self.name, r.resource_id) for r in named}
        known = await self.journal.aio.created_among(candidates) if self.journal is not None else set()
        named = [r for r in named if (self.name, r.resource_id) not in known]
        fresh = [r for r in named if (when := parse_time(r.created_at)) is not None and when >= sent]
        # Made a little before the request (or with no time at all): perhaps ours seen through a
        # provider clock that runs behind, perhaps one made elsewhere. Never guessed either way.
        doubtful = [
            r for r in named if (when := parse_time(r.created_at)) is None or sent - CLOCK_SKEW <= when < sent
        ]
        if len(fresh) == 1 and not doubtful:
            return fresh[0]
        if not fresh and not doubtful:
            return None
        undated = [r for r in named if parse_time(r.created_at) is None]
        ids = ", ".join(r.resource_id for r in fresh + doubtful)
        raise Ambiguous(
            f"more than one resource could be the one journal #{row['id']} made ({ids}: named "
            f"{row['target']!r}, not in the journal"
            + (", no creation time" if undated else "")
            + (", made just before the request" if len(doubtful) > len(undated) else "")
            + "). Left unknown rather than guessed.",
            provider=self.name,
            hint="Check them at the provider.",
        )

    # ---- mutation planners ------------------------------------------------------------------
    async def plan_update(self, data: UpdateInput) -> Plan:
        raise self.unsupported("updating a resource")

    async def plan_stop(self, data: StopInput) -> Plan:
        raise self.unsupported("stopping a resource")

    async def plan_start(self, resource_id: str) -> Plan:
        raise self.unsupported("starting a resource")

    async def plan_delete(self, resource_id: str) -> Plan:
        raise self.unsupported("deleting a resource")
