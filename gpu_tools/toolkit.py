"""The toolkit both fronts hold: settings, adapters, journal, registry and gate in one object.

`await Toolkit().call("list_offers", {...})` is the whole API; the MCP tools and the `%gpu`
magics are thin wrappers over it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Coroutine, Mapping
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from gpu_tools.approvals import Approvals
from gpu_tools.errors import (
    GpuToolsError,
    InvalidInput,
    NotConfigured,
    PolicyRefused,
    Unsupported,
    redact_known,
)
from gpu_tools.gate import Confirmer, Gate, Question, Refuse
from gpu_tools.http import Memo
from gpu_tools.journal import Journal
from gpu_tools.models import (
    Clock,
    Offer,
    ProviderInfo,
    ProviderListing,
    ProviderStatus,
    ReconcileReport,
    Resource,
    ToolsetInfo,
    utc_now,
)
from gpu_tools.operations import BASE_TOOLSETS, TOOLSETS, Operation, Progress, Registry, toolset_provider
from gpu_tools.price_history import observe
from gpu_tools.providers import ADAPTERS, PROVIDERS, Provider
from gpu_tools.providers.base import Truncated
from gpu_tools.reconcile import LIVE_EFFECTS, pending_rows, reconcile
from gpu_tools.settings import Settings, load_settings
from gpu_tools.unified import CORE_OPERATIONS

if TYPE_CHECKING:
    import httpx

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


def scrub(result: M, *, reveal: bool = False) -> M:
    """`result` with every known secret (configured credentials, passwords passed in) replaced,
    wherever it appears: a provider may echo a key in any field (an image's docker options...).
    `reveal` (an explicit `reveal_secrets` read) keeps the passwords, never the credentials."""
    text = result.model_dump_json()
    clean = redact_known(text, user_secrets=not reveal)
    if clean == text:
        return result
    scrubbed = type(result).model_validate_json(clean)
    for name in getattr(result, "__private_attributes__", {}):
        setattr(scrubbed, name, getattr(result, name))
    return scrubbed


def registry() -> Registry:
    """Every operation: the unified ones, then each registered provider's own. Assembled here, at
    the top of the core, so that no module below imports one that imports it back."""
    return _registry(tuple(ADAPTERS))


@cache
def _registry(providers: tuple[str, ...]) -> Registry:
    ops = list(CORE_OPERATIONS)
    for name in providers:
        ops.extend(PROVIDERS[name].operations)
    return Registry(ops)


class Toolkit:
    def __init__(
        self,
        settings: Settings | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        now: Clock = utc_now,
    ) -> None:
        self.settings = settings or load_settings()
        self.now = now  # the one wall clock of the core: tests pass their own instead of sleeping
        self.settings.register_credentials()  # also for settings made by model_copy
        self.registry: Registry = registry()
        self.journal = Journal.open(self.settings.journal_target(), now=now)
        self.adapters: dict[str, Provider] = {
            name: cls(self.settings, transport=transport, journal=self.journal)
            for name, cls in ADAPTERS.items()
        }
        self.gate = Gate(self)
        self.approvals = Approvals(self)  # the approval page and its records (gpu_tools.approvals)
        self._offers: Memo[list[Offer]] = Memo(lambda: self.settings.offers_cache_ttl, now=now)
        # Resource listings are kept no time at all (ttl 0): callers that arrive while one is in flight
        # share it, and the next caller after it answers sends a new one.
        self._listings: Memo[list[Resource]] = Memo(lambda: 0.0, now=now)
        # Small answers reused briefly by key (completion values), with the time they came in.
        self.recent: dict[str, tuple[float, Any]] = {}

    # ---- the API -----------------------------------------------------------------------------
    def operations(self, toolsets: Collection[str] | None = None) -> list[Operation]:
        """The operations this toolkit offers: mutations are left out when read_only is set, and
        operations outside `toolsets` when it is given."""
        return [
            op
            for op in self.registry
            if not (op.mutating and self.settings.read_only) and (toolsets is None or op.toolset in toolsets)
        ]

    def default_toolsets(self) -> list[str]:
        """`reads`, `lifecycle`, and the own set of each provider with credentials that is allowed."""
        allowed = self.settings.allowed_providers
        return [*BASE_TOOLSETS] + [
            name for name in self.adapters if self.configured(name) and (allowed is None or name in allowed)
        ]

    def toolsets(self) -> list[str]:
        """The tool sets a front lists: the `toolsets` setting (`default` and `all` expanded), or the
        defaults. A provider outside `allowed_providers` never gets a set."""
        chosen = self.settings.toolsets
        if chosen is None:
            return self.default_toolsets()
        names: list[str] = []
        for name in chosen:
            if name == "all":
                names += TOOLSETS
            elif name == "default":
                names += self.default_toolsets()
            elif name in TOOLSETS:
                names.append(name)
            else:
                raise InvalidInput(
                    f"unknown tool set {name!r}; known: {', '.join(TOOLSETS)} (or 'default', 'all')."
                )
        allowed = self.settings.allowed_providers
        return [
            name
            for name in dict.fromkeys(names)
            if allowed is None or toolset_provider(name) in (None, *allowed)
        ]

    def provider_listing(self) -> ProviderListing:
        """The providers, and every tool set with its tools and whether the MCP server lists it."""
        enabled = set(self.toolsets())
        ops = self.operations()
        sets = [
            ToolsetInfo(
                name=name,
                description=text,
                enabled=name in enabled,
                tools=[op.name for op in ops if op.toolset == name],
            )
            for name, text in TOOLSETS.items()
        ]
        items = self.provider_infos()
        return ProviderListing(
            items=items,
            total=len(items),
            toolsets=[s for s in sets if s.tools],
            how_to_enable="The MCP server lists the enabled tool sets only. To list others, start gpu-mcp with "
            "--toolsets default,NAME (or all), or set GPU_TOOLS_TOOLSETS=default,NAME or toolsets = "
            "['default', 'NAME'] in config.toml, and restart the server.",
            notes=[f"Approval policy: {self.approvals.policy_text()}."],
        )

    async def call(
        self,
        name: str,
        args: dict[str, Any] | None = None,
        *,
        confirmer: Confirmer | None = None,
        progress: Progress | None = None,
        approval_id: str | None = None,
        actor: str | None = None,
        answers: str | None = None,
    ) -> BaseModel:
        """Run one operation. A mutation's yes comes from `confirmer`; `approval_id` is the question the
        front asked with `question()` first, `answers` the one an earlier round of the same call asked
        (see `Gate.run`). Every result is scrubbed of known secrets."""
        op = self.registry.get(name)
        if op.mutating:
            data = await self.gate.parse(op, args or {}, actor=actor)
            live_limits = (
                self.settings.max_total_usd_per_hour,
                self.settings.budget_usd_per_day,
                self.settings.budget_usd_total,
            )
            if any(v is not None for v in live_limits) and await self.journal.aio.run(
                pending_rows, self, effects=LIVE_EFFECTS
            ):
                await reconcile(self)  # caps count what the providers really hold
            result: BaseModel = await self.gate.run(
                op, data, confirmer or Refuse(), approval_id=approval_id, actor=actor, answers=answers
            )
            return scrub(result)
        data = op.parse(args)
        if op.handler is None:
            raise RuntimeError("internal error: expected op.handler is not None")
        if op.provider:
            self.check_provider_allowed(op.provider)
        result = await op.handler(self, data, progress)
        if hasattr(result, "sandbox"):
            result.sandbox = self.settings.sandbox  # type: ignore[attr-defined]
        return scrub(result, reveal=getattr(data, "reveal_secrets", False) is True)

    async def question(
        self,
        name: str,
        args: dict[str, Any] | None,
        *,
        resume: bool = False,
        asked_by: str | None = None,
        page: bool = False,
        client: str | None = None,
        page_only: bool = False,
        asked: str | None = None,
    ) -> Question | None:
        """The question a front should ask before `call`, or None when no question is due. `page`:
        the front cannot show a form, so the approval page answers it; `asked`: on a later round,
        the approval this call asked about (see `Gate.question`)."""
        return await self.gate.question(
            self.registry.get(name),
            args or {},
            resume=resume,
            asked_by=asked_by,
            page=page,
            client=client,
            page_only=page_only,
            asked=asked,
        )

    async def reconcile(self, provider: str | None = None) -> ReconcileReport:
        return await reconcile(self, provider)

    async def aclose(self) -> None:
        for adapter in self.adapters.values():
            await adapter.http.aclose()

    def close(self) -> None:
        self.approvals.close()
        self.journal.close()

    async def offers(self, adapter: Provider, refresh: bool = False) -> list[Offer]:
        """A provider's offers, reused for `offers_cache_ttl` seconds unless `refresh`; concurrent
        callers share one fetch. Each offer says when its price was stated: when the adapter kept
        the price longer than the offers (Sesterce's prices), or else when the offers were fetched."""
        got = await self._offers.get(
            adapter.name, lambda: self._fetch_offers(adapter, refresh), refresh=refresh
        )
        now = self.now()
        out = []
        for offer in got.value:
            copy = offer.model_copy(deep=True)
            if copy.price is not None or copy.usd_per_hour is not None:
                as_of = datetime.fromisoformat(copy.price_as_of) if copy.price_as_of else got.at
                copy.price_as_of = as_of.isoformat(timespec="seconds")
                copy.price_age_seconds = max(0, int((now - as_of).total_seconds()))
            out.append(copy)
        return out

    async def resources(self, adapter: Provider) -> list[Resource]:
        """A provider's live resources, as `list_resources` answers. Concurrent callers (fifty
        `spend`s at once) share the one listing in flight instead of each sending its own requests;
        nothing is kept once it answers, and a fresh read (the gate's, `FRESH`) always sends its own.
        Each caller gets its own copies, which it may change (costs, `brief`)."""
        try:
            got = await self._listings.get(adapter.name, adapter.list_resources)
        except Truncated as cut:
            items = [r.model_copy() for r in cut.items]
            raise Truncated(items, cut.message, provider=cut.provider or adapter.name) from None
        return [r.model_copy() for r in got.value]

    async def _fetch_offers(self, adapter: Provider, refresh: bool) -> list[Offer]:
        """One fetch of a provider's offers; their prices go into the price history as they come in."""
        offers = await adapter.list_offers(refresh=refresh)
        await observe(self, offers, self.now())
        return offers

    # ---- adapters -----------------------------------------------------------------------------
    def check_provider_allowed(self, name: str | None) -> None:
        allowed = self.settings.allowed_providers
        if name and allowed is not None and name not in allowed:
            raise PolicyRefused(f"refused by policy allowed_providers: {name} is not in {allowed}.")

    def configured(self, name: str) -> bool:
        return ADAPTERS[name].is_configured(self.settings)

    def adapter(self, name: str, capability: str | None = None) -> Provider:
        """The adapter of `name`, checked for credentials and for `capability`."""
        self.check_provider_allowed(name)
        adapter = self.adapters[name]
        if capability and capability not in adapter.capabilities:
            others = [a.title for a in self.adapters.values() if capability in a.capabilities]
            raise Unsupported(
                f"{adapter.title} does not support '{capability}'.",
                provider=name,
                hint=f"Providers that do: {', '.join(others)}." if others else "No configured provider does.",
            )
        if not self.configured(name):
            raise NotConfigured(
                f"{adapter.title} has no credentials.", provider=name, hint=adapter.config_hint()
            )
        return adapter

    def provider_infos(self) -> list[ProviderInfo]:
        return [
            ProviderInfo(
                name=a.name,
                title=a.title,
                configured=self.configured(a.name),
                base_url=a.base_url(),
                capabilities=sorted(a.capabilities),
                operations=[op.name for op in a.operations],
                toolsets=list(dict.fromkeys(op.toolset for op in a.operations)),
            )
            for a in self.adapters.values()
        ]

    async def fan_out(
        self,
        capability: str,
        only: str | list[str] | None,
        fn: Callable[[Provider], Awaitable[list[T]]],
        progress: Progress | None = None,
    ) -> tuple[list[T], list[ProviderStatus]]:
        """Run `fn` on every configured provider that has `capability` (or those in `only`),
        concurrently, each under its own time budget, so one slow or failing provider never hides the
        others' answers. `progress` hears which providers have answered and which are still awaited."""
        names = ([only] if isinstance(only, str) else list(dict.fromkeys(only or []))) or list(self.adapters)
        for name in names if only else []:
            self.adapter(name, capability)  # a direct question gets a direct error
        statuses: dict[str, ProviderStatus] = {}
        jobs: dict[str, Coroutine[Any, Any, list[T]]] = {}
        waiting: set[str] = set()
        asked: set[str] = set()  # filled once every task exists, before any can finish
        allowed = self.settings.allowed_providers
        for name in names:
            adapter = self.adapters[name]
            if capability not in adapter.capabilities:
                statuses[name] = ProviderStatus(provider=name, status="unsupported")
            elif not self.configured(name) or (allowed is not None and name not in allowed):
                statuses[name] = ProviderStatus(provider=name, status="not_configured")
            else:
                jobs[name] = self._answer(name, fn(adapter), waiting, asked, progress)
        waiting.update(jobs)
        asked.update(jobs)
        # One provider is simply awaited (a task per call would only cost time); several run at once.
        tasks: Mapping[str, Awaitable[list[T]]] = (
            {name: asyncio.create_task(job) for name, job in jobs.items()} if len(jobs) > 1 else jobs
        )
        items: list[T] = []
        for name, task in tasks.items():
            try:
                items.extend(await task)
                statuses[name] = ProviderStatus(provider=name, status="ok")
            except Truncated as cut:
                items.extend(cut.items)
                statuses[name] = ProviderStatus(provider=name, status="partial", message=cut.message)
            except TimeoutError:
                statuses[name] = ProviderStatus(
                    provider=name,
                    status="timeout",
                    message=f"no answer within {self.settings.provider_timeout:g}s",
                )
            except GpuToolsError as exc:
                statuses[name] = ProviderStatus(provider=name, status="error", message=str(exc))
        return items, [statuses[n] for n in names]

    async def _answer(
        self,
        name: str,
        work: Awaitable[list[T]],
        waiting: set[str],
        asked: set[str],
        progress: Progress | None,
    ) -> list[T]:
        """One provider's part of a fan-out, under its time budget; reports when it has answered."""
        try:
            async with asyncio.timeout(self.settings.provider_timeout):
                return await work
        finally:
            waiting.discard(name)
            if progress is not None and waiting:
                answered = sorted(n for n in self.adapters if n not in waiting and n in asked)
                await progress(
                    len(answered),
                    len(asked),
                    f"{', '.join(answered)} answered; waiting for {', '.join(sorted(waiting))}",
                )
