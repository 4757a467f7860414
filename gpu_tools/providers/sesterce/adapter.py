"""Sesterce Cloud: the Provider: calls -> normalized models, and mutation plans."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from gpu_tools.errors import InvalidInput, MalformedResponse, NotFound, ProviderError
from gpu_tools.http import Kept, Memo, Stamped
from gpu_tools.journal import Journal
from gpu_tools.models import (
    Offer,
    Plan,
    Region,
    Resource,
    Status,
    Template,
    WireRequest,
)
from gpu_tools.operations import (
    StopInput,
    UpdateInput,
)
from gpu_tools.providers.base import Provider
from gpu_tools.settings import Settings

if TYPE_CHECKING:
    import httpx
from gpu_tools.providers.sesterce.inputs import (
    SesterceQuote,
    SesterceQuoteInput,
    SesterceRegionScaling,
    SesterceRegistry,
)
from gpu_tools.providers.sesterce.wire import (
    INSTANCES,
    PRICE_SOURCE,
    PRICING,
    REGISTRIES,
    ROOT,
    STATUS,
    AutoScalingConfiguration,
    Hardware,
    Instance,
    Pricing,
    Registry,
    Scale,
    WireModel,
    WireRegion,
)


# ---- helpers ------------------------------------------------------------------------------------
def _usd(p: Pricing | None) -> float | None:
    if p is None or (p.currency_code or "USD").upper() != "USD":
        return None
    return p.price_per_hour


def _money(p: Pricing) -> str:
    cur = p.currency_code or "USD"
    month = f", {p.price_per_month:.2f} {cur}/month" if p.price_per_month is not None else ""
    return f"{p.price_per_hour:.2f} {cur}/hour{month}"


# ---- the adapter ------------------------------------------------------------------------------
class SesterceProvider(Provider):
    secret_keys = frozenset({"password"})
    # Environment variable values often carry tokens: every one is masked, the names kept.
    secret_maps = frozenset({"envs"})

    def __init__(
        self,
        settings: Settings,
        transport: httpx.AsyncBaseTransport | None = None,
        journal: Journal | None = None,
    ) -> None:
        super().__init__(settings, transport=transport, journal=journal)
        # Prices and the hardware catalogue change slowly: kept for catalog_cache_ttl, also on this
        # account's shelf, so a new process's first list_offers is one round trip, not two.
        ttl = lambda: self.settings.catalog_cache_ttl  # noqa: E731
        self._price_memo: Memo[Pricing] = Memo(
            ttl, kept=Kept(self.shelf, "prices", Pricing.dump, Pricing.model_validate), now=self.now
        )
        self._hardware_memo: Memo[list[Hardware]] = Memo(
            ttl,
            now=self.now,
            kept=Kept(
                self.shelf,
                "hardware",
                lambda hws: [h.dump() for h in hws],
                lambda raw: [Hardware.model_validate(h) for h in raw],
            ),
        )

    def auth_headers(self) -> dict[str, str]:
        return {"x-api-key": self.credential("sesterce_api_key")}

    # ---- raw reads ---------------------------------------------------------------------------
    async def _models(self) -> list[WireModel]:
        body = await self.http.request("GET", f"{ROOT}/models")
        return self.parse_list(WireModel, body, f"GET {ROOT}/models")

    async def _hardwares(self) -> list[Hardware]:
        body = await self.http.request("GET", f"{ROOT}/hardwares")
        return self.parse_list(Hardware, body, f"GET {ROOT}/hardwares")

    async def _regions(self) -> list[WireRegion]:
        body = await self.http.request("GET", f"{ROOT}/regions")
        return self.parse_list(WireRegion, body, f"GET {ROOT}/regions")

    async def _registries(self) -> list[Registry]:
        body = await self.http.request("GET", REGISTRIES)
        return self.parse_list(Registry, body, f"GET {REGISTRIES}")

    async def instance(self, resource_id: str) -> Instance:
        # Quoted: the id comes from the caller and must stay one path segment.
        path = f"{INSTANCES}/{quote(resource_id, safe='')}"
        return self.parse(Instance, await self.http.request("GET", path), f"GET {path}")

    async def pricing(self, hardware_id: str, maxima: list[tuple[int, int]]) -> Pricing:
        """The provider's price for `hardware_id` with `(region_id, max)` per region. A read: the
        documented POST only previews a price, so it may be retried and needs no confirmation."""
        body = {
            "hardwareId": hardware_id,
            "autoScalingConfigurations": [{"regionId": r, "scale": {"max": m}} for r, m in maxima],
        }
        return self.parse(
            Pricing, await self.http.request("POST", PRICING, json_body=body, safe=True), f"POST {PRICING}"
        )

    # ---- mapping -----------------------------------------------------------------------------
    @staticmethod
    def _status(inst: Instance) -> Status:
        """The normalized status (the API's names in any case)."""
        return STATUS.get(inst.status.upper() if inst.status else "", "unknown")

    def to_resource(
        self, inst: Instance, hardware: Hardware | None = None, *, reveal: bool = False
    ) -> Resource:
        containers = inst.containers or []
        scales = [c.scale for c in containers if c.scale is not None]
        ready = [
            c.deploy_status.ready for c in containers if c.deploy_status and c.deploy_status.ready is not None
        ]
        details = inst.dump()
        errors = [f"region {c.region_id}: {c.error_message}" for c in containers if c.error_message]
        if errors:
            details["errors"] = errors
        if hardware is not None:
            details["hardware"] = hardware.name
        return Resource(
            provider=self.name,
            kind="endpoint",
            resource_id=inst.id,
            name=inst.name,
            status=self._status(inst),
            raw_status=inst.status,
            region=",".join(str(c.region_id) for c in containers) or None,
            gpu_name=hardware.gpu.model if hardware and hardware.gpu else None,
            gpu_count=hardware.gpu.count if hardware and hardware.gpu else None,
            replicas=sum(ready) if ready else None,
            min_replicas=sum(s.min or 0 for s in scales) if scales else None,
            max_replicas=sum(s.max or 0 for s in scales) if scales else None,
            url=inst.address,
            created_at=inst.created_at,
            usd_per_hour=inst.hourly_price,
            details=details if reveal else self.mask(details),
        )

    @staticmethod
    def to_registry(reg: Registry) -> SesterceRegistry:
        return SesterceRegistry(
            registry_id=reg.id,
            name=reg.name,
            url=reg.url,
            username=reg.username,
            created_at=reg.created_at,
            updated_at=reg.updated_at,
        )

    # ---- unified reads -------------------------------------------------------------------------
    async def list_templates(self) -> list[Template]:
        hardwares = {h.id: h for h in await self._hardwares()}
        out = []
        for m in await self._models():
            hw = hardwares.get(m.default_hardware_id or "")
            port = f" Default container port {m.port}." if m.port else ""
            out.append(
                Template(
                    provider=self.name,
                    name=m.name,
                    description=f"Features: {', '.join(m.features) or 'none listed'}.{port} "
                    f"Pass model_id={m.id} to sesterce_create_endpoint.",
                    gpu_types=[hw.gpu.model] if hw and hw.gpu else [],
                    gpu_counts=[hw.gpu.count] if hw and hw.gpu else [],
                    details={"model_id": m.id, **m.dump()},
                )
            )
        return out

    async def list_regions(self) -> list[Region]:
        return [
            Region(provider=self.name, region_id=str(r.id), name=r.name, details=r.dump())
            for r in await self._regions()
        ]

    async def _price_of(
        self, hardware_id: str, region_id: int, refresh: bool
    ) -> tuple[Stamped[Pricing] | None, str | None]:
        """The provider's price for one replica of a hardware in a region, kept for
        `catalog_cache_ttl` (prices move far more slowly than capacity). A failure is not kept."""
        try:
            got = await self._price_memo.get(
                (hardware_id, region_id), lambda: self.pricing(hardware_id, [(region_id, 1)]), refresh=refresh
            )
        except ProviderError as exc:
            return None, str(exc)
        return got, None

    async def list_offers(self, *, refresh: bool = False) -> list[Offer]:
        """Hardwares joined with each region's capacity, each priced by the provider's preview for
        one replica there. A failed price leaves that offer unpriced instead of failing the list.

        Capacity is read fresh on every call; prices are kept longer, so a warm call is the two
        catalogue reads at once. Only a price not yet kept needs a second round trip (it needs the
        catalogue's hardware and region ids), and those are all asked at once."""
        hardwares, regions = await asyncio.gather(self._catalog(refresh=True), self._regions())
        known = {hw.id for hw in hardwares}
        pairs = list(
            dict.fromkeys(
                (c.hardware_id, r.id) for r in regions for c in r.capacities if c.hardware_id in known
            )
        )
        answers = await asyncio.gather(*(self._price_of(hw_id, r_id, refresh) for hw_id, r_id in pairs))
        quotes = dict(zip(pairs, answers, strict=True))

        def offer(hw: Hardware, region: WireRegion | None, capacity: int | None) -> Offer:
            got, problem = quotes[(hw.id, region.id)] if region is not None else (None, None)
            quote = got.value if got is not None else None
            details: dict[str, Any] = {"hardware_name": hw.name}
            if region is not None:
                details.update(region_name=region.name, country_code=region.country_code, capacity=capacity)
            if quote is not None and quote.price_per_month is not None:
                details["price_per_month"] = quote.price_per_month
            if problem:
                details["price_error"] = problem
            return Offer(
                provider=self.name,
                kind="endpoint",
                offer_id=hw.id,
                gpu_name=hw.gpu.model if hw.gpu else hw.name,
                gpu_count=hw.gpu.count if hw.gpu else None,
                gpu_memory_gb=hw.gpu.memory if hw.gpu else None,
                vcpu=hw.cpu // 1000 if hw.cpu is not None else None,
                ram_gb=round(hw.ram / 1024, 1) if hw.ram is not None else None,
                region=str(region.id) if region is not None else None,
                price=quote.price_per_hour if quote else None,
                currency=(quote.currency_code or "USD") if quote else None,
                usd_per_hour=_usd(quote),
                price_as_of=got.at.isoformat(timespec="seconds") if got is not None else None,
                available=bool(capacity) and (region is None or (region.state or "ACTIVE") == "ACTIVE"),
                details=details,
            )

        out = []
        for hw in hardwares:
            placed = [(r, c.capacity) for r in regions for c in r.capacities if c.hardware_id == hw.id]
            out += [offer(hw, r, cap) for r, cap in placed] or [offer(hw, None, None)]
        return out

    async def list_resources(self) -> list[Resource]:
        body = await self.http.request("GET", INSTANCES)
        return [self.to_resource(i) for i in self.parse_list(Instance, body, f"GET {INSTANCES}")]

    async def _catalog(self, *, refresh: bool = False) -> list[Hardware]:
        """The hardware catalogue, kept for `catalog_cache_ttl` (list_offers always rereads it)."""
        return (await self._hardware_memo.get(None, self._hardwares, refresh=refresh)).value

    async def _hardware_or_none(self, hardware_id: str | None) -> Hardware | None:
        """The instance's hardware for GPU name and count, from the kept catalogue (read again
        once if the id is new to it); a failure only leaves them blank."""
        if not hardware_id:
            return None
        try:
            kept = self._hardware_memo.fresh(None) is not None
            found = next((h for h in await self._catalog() if h.id == hardware_id), None)
            if found is None and kept:
                found = next((h for h in await self._catalog(refresh=True) if h.id == hardware_id), None)
            return found
        except ProviderError:
            return None

    async def _catalog_or_none(self) -> list[Hardware] | None:
        try:
            return await self._catalog()
        except ProviderError:
            return None

    async def get_resource(self, resource_id: str, *, reveal_secrets: bool = False) -> Resource:
        """One request once the catalogue is kept (each wait_for_resource poll); the first call reads
        the instance and the catalogue at once."""
        if self._hardware_memo.fresh(None) is None:
            inst, _ = await asyncio.gather(self.instance(resource_id), self._catalog_or_none())
        else:
            inst = await self.instance(resource_id)
        return self.to_resource(inst, await self._hardware_or_none(inst.hardware_id), reveal=reveal_secrets)

    # ---- provider reads ------------------------------------------------------------------------
    async def list_registries(self) -> list[SesterceRegistry]:
        return [self.to_registry(r) for r in await self._registries()]

    async def quote(self, data: SesterceQuoteInput) -> SesterceQuote:
        hw = await self.check_hardware(data.hardware_id)
        await self.check_regions(hw, data.regions)
        p = await self.pricing(hw.id, [(r.region_id, r.max) for r in data.regions])
        replicas = sum(r.max for r in data.regions)
        return SesterceQuote(
            hardware_id=hw.id,
            hardware_name=hw.name,
            max_replicas=replicas,
            gpus=hw.gpu.count * replicas if hw.gpu else None,
            currency=p.currency_code,
            price_per_hour=p.price_per_hour,
            price_per_month=p.price_per_month,
            usd_per_hour=_usd(p),
            regions=[{"region_id": r.region_id, "max": r.max} for r in data.regions],
        )

    # ---- checks before anything is sent -------------------------------------------------------
    async def check_hardware(self, hardware_id: str) -> Hardware:
        hardwares = await self._hardwares()
        for hw in hardwares:
            if hw.id == hardware_id:
                return hw
        names = "; ".join(f"{h.id} ({h.name})" for h in hardwares) or "none"
        raise InvalidInput(
            f"no hardware {hardware_id!r}. Available: {names}.", provider=self.name, hint="See list_offers."
        )

    async def check_regions(self, hw: Hardware, regions: list[SesterceRegionScaling]) -> list[str]:
        """Refuse unknown regions and regions without this hardware; warn about thin capacity."""
        known = {r.id: r for r in await self._regions()}
        warnings = []
        for want in regions:
            region = known.get(want.region_id)
            if region is None:
                listed = ", ".join(f"{r.id} ({r.name})" for r in known.values()) or "none"
                raise InvalidInput(f"no region {want.region_id}. Available: {listed}.", provider=self.name)
            cap = next((c.capacity for c in region.capacities if c.hardware_id == hw.id), None)
            if cap is None:
                having = [
                    f"{r.id} ({r.name})"
                    for r in known.values()
                    if any(c.hardware_id == hw.id for c in r.capacities)
                ]
                raise InvalidInput(
                    f"region {region.id} ({region.name}) does not offer {hw.name}. "
                    f"Regions that do: {', '.join(having) or 'none'}.",
                    provider=self.name,
                )
            if (region.state or "ACTIVE") != "ACTIVE":
                warnings.append(f"region {region.id} ({region.name}) is {region.state}.")
            if cap < want.max:
                warnings.append(
                    f"region {region.id} ({region.name}) reports capacity {cap} for {hw.name}, "
                    f"below the requested max of {want.max}; pods beyond it may not deploy."
                )
        return warnings

    async def resolve_model(self, model_id: str) -> WireModel:
        models = await self._models()
        for m in models:
            if model_id in (m.id, m.name):
                return m
        names = "; ".join(f"{m.id} ({m.name})" for m in models) or "none"
        raise InvalidInput(
            f"no model {model_id!r}. Available: {names}.", provider=self.name, hint="See list_templates."
        )

    async def check_registry(self, registry_id: str) -> Registry:
        registries = await self._registries()
        for reg in registries:
            if reg.id == registry_id:
                return reg
        raise NotFound(
            f"no registry {registry_id!r}", provider=self.name, hint="See sesterce_list_registries."
        )

    async def prices(
        self, hw: Hardware, scales: list[tuple[int, int, int]]
    ) -> tuple[float | None, float | None, list[str]]:
        """USD/hour at the minimum and maximum of `(region_id, min, max)`, and the plan's price
        lines. A failing preview leaves the cost unknown (which policy caps then refuse)."""
        try:
            at_max = await self.pricing(hw.id, [(r, hi) for r, _, hi in scales])
            lows = [(r, lo) for r, lo, _ in scales if lo > 0]
            at_min = await self.pricing(hw.id, lows) if lows else None
        except ProviderError as exc:
            return None, None, [f"the Sesterce price preview failed ({exc}); the cost is unknown."]
        replicas = sum(hi for _, _, hi in scales)
        lines = [f"Sesterce price preview at maximum scale ({replicas} replicas): {_money(at_max)}."]
        if at_min is not None:
            lines.append(f"At minimum scale ({sum(lo for _, lo, _ in scales)} replicas): {_money(at_min)}.")
        if _usd(at_max) is None:
            lines.append(
                f"The preview is in {at_max.currency_code}, not USD: USD policy caps cannot check it."
            )
            return None, None, lines
        usd_min = _usd(at_min) if at_min is not None else 0.0
        return usd_min, _usd(at_max), lines

    # ---- instance mutations ------------------------------------------------------------------
    def _finish_instance(self, hw: Hardware | None, source: str) -> Callable[[Any], Awaitable[Any]]:
        """A `finish` for create and PATCH: they answer the short instance shape, so read the
        detail (regions, replicas) when possible. The write already happened: an unreadable
        answer or a failed read is reported, never turned into a failure of the call."""

        async def finish(answer: Any) -> Any:
            try:
                inst = self.parse(Instance, answer, source)
            except MalformedResponse as exc:
                return {"answer": self.mask(answer), "note": str(exc)}
            try:
                return await self.get_resource(inst.id)
            except ProviderError:
                return self.to_resource(inst, hw)

        return finish

    async def patch_body(
        self,
        inst: Instance,
        scaling: list[AutoScalingConfiguration],
        *,
        model_id: str | None = None,
        registry_id: str | None = None,
    ) -> dict[str, Any]:
        """The documented full PATCH body from the current detail (see the module docstring)."""
        body: dict[str, Any] = {
            "modelId": inst.model_id,
            "containerPort": inst.container_port,
            "description": inst.description,
            "autoScalingConfigurations": [c.dump() for c in scaling],
            "podLifetime": inst.pod_lifetime,
            "envs": inst.envs,
            "hardwareId": inst.hardware_id,
            "startupCommand": inst.startup_command,
            "registryId": inst.registry_id,
            "apiKeyIds": inst.api_keys_ids,
        }
        if model_id is not None or registry_id is not None:  # the caller says what it runs
            body["modelId"], body["registryId"] = model_id, registry_id
            return body
        reported = inst.model_extra or {}
        if "modelId" in reported or "registryId" in reported or inst.model_id or inst.registry_id:
            return body
        created = await self._created_body(inst.id)
        if created is not None and "modelId" in created and "registryId" in created:
            body["modelId"], body["registryId"] = created["modelId"], created["registryId"]
            return body
        raise InvalidInput(
            f"Sesterce's update requires modelId and registryId, but neither the instance detail nor this "
            f"tool's journal knows them for {inst.id} (it was not created through this tool). Nothing was "
            "sent. Call sesterce_update_endpoint with model_id (the catalogue model it runs) or registry_id "
            "(the registry of its image), with the change you want; the other one is sent as null.",
            provider=self.name,
        )

    async def _created_body(self, instance_id: str) -> dict[str, Any] | None:
        """The body this tool sent to create the instance, if it did."""
        if self.journal is None:
            return None
        row = await self.journal.aio.created_row(self.name, instance_id)
        return row.get("body") if row else None

    async def plan_update(self, data: UpdateInput) -> Plan:
        self.reject_fields(data, ("name", "gpu_type", "gpu_count"), "update_resource")
        inst = await self.instance(data.resource_id)
        current = [
            AutoScalingConfiguration(region_id=c.region_id, scale=c.scale or Scale())
            for c in inst.containers or []
        ]
        lo, hi = data.min_replicas, data.max_replicas
        if data.replicas is not None:
            if lo is not None or hi is not None:
                raise InvalidInput("give either replicas or min/max_replicas, not both.", provider=self.name)
            if data.replicas < 1:
                raise InvalidInput(
                    "replicas must be at least 1; use stop_resource to stop it.", provider=self.name
                )
            lo = hi = data.replicas
        scaling = current
        if lo is not None or hi is not None:
            if not current:
                raise InvalidInput(
                    f"instance {inst.id} reports no regions to scale; use sesterce_update_endpoint with regions.",
                    provider=self.name,
                )
            scaling = []
            for c in current:
                scale = c.scale.model_copy(
                    update={
                        "min": c.scale.min if lo is None else lo,
                        "max": c.scale.max if hi is None else hi,
                    }
                )
                if scale.min is not None and scale.max is not None and scale.min > scale.max:
                    raise InvalidInput(
                        f"region {c.region_id}: min {scale.min} would exceed max {scale.max}.",
                        provider=self.name,
                    )
                scaling.append(c.model_copy(update={"scale": scale}))
        body = await self.patch_body(inst, scaling)
        changes = []
        if data.description is not None:
            body["description"] = data.description
            changes.append(f"description={data.description!r}")
        if lo is not None or hi is not None:
            bounds = ", ".join(f"{k}={v}" for k, v in (("min", lo), ("max", hi)) if v is not None)
            total = sum(c.scale.max or 0 for c in scaling)
            changes.append(
                f"{bounds} replicas in each of its {len(scaling)} region(s) "
                f"({', '.join(str(c.region_id) for c in scaling)}), up to {total} replicas in total"
            )
        return await self.plan_patch(inst, body, "update_resource", "; ".join(changes), [])

    async def plan_patch(
        self, inst: Instance, body: dict[str, Any], operation: str, changes: str, warnings: list[str]
    ) -> Plan:
        hw = await self.check_hardware(body["hardwareId"]) if body.get("hardwareId") else None
        scales = [
            (c["regionId"], c["scale"].get("min") or 0, c["scale"].get("max") or 1)
            for c in body["autoScalingConfigurations"]
        ]
        usd_min = usd_max = None
        lines: list[str] = []
        if hw is not None and scales:
            usd_min, usd_max, lines = await self.prices(hw, scales)
        return self.plan(
            operation=operation,
            action=f"Update Sesterce instance {inst.name or inst.id}: {changes}.",
            target=inst.id,
            request=WireRequest(method="PATCH", path=f"{INSTANCES}/{inst.id}", json_body=body),
            finish=self._finish_instance(hw, f"PATCH {INSTANCES}/{inst.id}"),
            reversible=True,
            reversibility="update it again with the previous values (shown in get_resource details).",
            usd_per_hour=usd_min,
            usd_per_hour_max=usd_max,
            price_source=PRICE_SOURCE,
            gpus=(hw.gpu.count if hw and hw.gpu else 0) * sum(hi for _, _, hi in scales) if hw else None,
            gpu_name=hw.gpu.model if hw and hw.gpu else None,
            warnings=lines + warnings,
        )

    def _refresh(self, resource_id: str, verb: str) -> Callable[[Any], Awaitable[Any]]:
        """A `finish` for 204 answers: the instance as it is now, or a plain note if it cannot be
        read (the request itself succeeded, so a failed read must not turn it into a failure)."""

        async def finish(answer: Any) -> Any:
            try:
                return await self.get_resource(resource_id)
            except ProviderError:
                return {"resource_id": resource_id, verb: True}

        return finish

    async def plan_stop(self, data: StopInput) -> Plan:
        inst = await self.instance(data.resource_id)
        self.refuse_no_op(
            "stop_resource",
            self._status(inst),
            f"instance {inst.name or inst.id}",
            inst.status,
        )
        return self.plan(
            operation="stop_resource",
            action=f"Stop Sesterce instance {inst.name or inst.id} (now {inst.status}); its pods are released.",
            target=inst.id,
            request=WireRequest(method="POST", path=f"{INSTANCES}/{inst.id}/stop"),
            finish=self._refresh(inst.id, "stopped"),
            reversible=True,
            reversibility="start it again with start_resource.",
        )

    async def plan_start(self, resource_id: str) -> Plan:
        inst = await self.instance(resource_id)
        self.refuse_no_op(
            "start_resource",
            self._status(inst),
            f"instance {inst.name or inst.id}",
            inst.status,
        )
        hw = await self._hardware_or_none(inst.hardware_id)
        scales = [(c.region_id, c.scale.min or 0, c.scale.max or 1) for c in inst.containers or [] if c.scale]
        usd_min = usd_max = None
        lines: list[str] = []
        if hw is not None and scales:
            usd_min, usd_max, lines = await self.prices(hw, scales)
        return self.plan(
            operation="start_resource",
            action=f"Start Sesterce instance {inst.name or inst.id} (now {inst.status}); billing resumes.",
            target=inst.id,
            request=WireRequest(method="POST", path=f"{INSTANCES}/{inst.id}/start"),
            finish=self._refresh(inst.id, "started"),
            reversible=True,
            reversibility="stop it again with stop_resource.",
            usd_per_hour=usd_min,
            usd_per_hour_max=usd_max,
            price_source=PRICE_SOURCE,
            gpus=(hw.gpu.count if hw.gpu else 0) * sum(hi for _, _, hi in scales) if hw else None,
            gpu_name=hw.gpu.model if hw and hw.gpu else None,
            warnings=lines,
        )

    async def plan_delete(self, resource_id: str) -> Plan:
        inst = await self.instance(resource_id)

        async def finish(answer: Any) -> Any:
            return answer if answer is not None else {"deleted": inst.id}

        return self.plan(
            operation="delete_resource",
            action=f"Delete Sesterce instance {inst.name or inst.id} permanently.",
            target=inst.id,
            request=WireRequest(method="DELETE", path=f"{INSTANCES}/{inst.id}"),
            finish=finish,
            reversible=False,
            reversibility="deleting an instance is permanent; its address stops answering.",
            warnings=["DELETE is not on Sesterce's API page; the official sesterce-cli uses it."],
        )

    # ---- registry mutations ------------------------------------------------------------------
    def finish_registry(self, source: str) -> Callable[[Any], Awaitable[SesterceRegistry]]:
        async def finish(answer: Any) -> SesterceRegistry:
            return self.to_registry(self.parse(Registry, answer, source))

        return finish
