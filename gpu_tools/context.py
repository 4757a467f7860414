"""What the core below the toolkit needs of it: the `Context` protocol.

Providers, the gate, the catalogue, reconciliation and the operations' handlers take a `Context`,
never `gpu_tools.toolkit.Toolkit`, so nothing below the fronts imports the toolkit, not even for type
hints, and the import graph has no circle. `Toolkit` is the one implementation.

Adapters are typed `Any` here: this module sits below `gpu_tools.providers.base`, which takes a
`Context` itself. Code above the providers gets a typed adapter from `Provider.of(ctx)`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from gpu_tools.journal import Journal
    from gpu_tools.models import Clock, Offer, ProviderListing, ProviderStatus, Resource
    from gpu_tools.settings import Settings

T = TypeVar("T")
Progress = Callable[[float, float | None, str], Awaitable[None]]


class SendsInFlight(Protocol):
    """The part of the gate reconciliation reads: journal rows this process is sending right now."""

    in_flight: set[int]


class Context(Protocol):
    settings: Settings
    journal: Journal
    now: Clock  # the core's one wall clock (tests pass their own)
    recent: dict[str, tuple[float, Any]]  # small answers kept briefly by key (completion values)
    adapters: Mapping[str, Any]  # every provider's adapter, configured or not
    gate: SendsInFlight
    approvals: Any  # gpu_tools.approvals.Approvals: the approval page's records (it takes a Context)

    def adapter(self, name: str, capability: str | None = None) -> Any:
        """The adapter of `name`, checked for credentials, policy and `capability`."""
        ...

    def configured(self, name: str) -> bool: ...

    def check_provider_allowed(self, name: str | None) -> None: ...

    async def fan_out(
        self,
        capability: str,
        only: str | list[str] | None,
        fn: Callable[[Any], Awaitable[list[T]]],
        progress: Progress | None = None,
    ) -> tuple[list[T], list[ProviderStatus]]: ...

    async def offers(self, adapter: Any, refresh: bool = False) -> list[Offer]: ...

    async def resources(self, adapter: Any) -> list[Resource]: ...

    def provider_listing(self) -> ProviderListing: ...
