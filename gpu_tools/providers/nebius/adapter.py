"""Nebius Token Factory: the Provider: calls -> normalized models, and mutation plans."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from gpu_tools.errors import InvalidInput, MalformedResponse, NotFound
from gpu_tools.gpus import gpu_memory_gb
from gpu_tools.models import ChatResult, Offer, Plan, Region, Resource, Status, Template, WireRequest
from gpu_tools.operations import ChatInput, StopInput, UpdateInput
from gpu_tools.providers.base import Provider
from gpu_tools.providers.nebius.inputs import NebiusCreateEndpoint
from gpu_tools.providers.nebius.wire import (
    INFERENCE_BASE,
    NO_PRICE,
    PATH,
    REGION_NAMES,
    STATUS,
    Endpoint,
    Scaling,
)
from gpu_tools.providers.wire import expect_list


# ---- parsing helpers ------------------------------------------------------------------------
def _list_of(body: Any, source: str, *keys: str) -> list[Any]:
    """A list from a bare array or from the first list-valued key of an object."""
    if isinstance(body, list):
        return body
    if isinstance(body, dict):
        for key in keys:
            if isinstance(body.get(key), list):
                return body[key]
        for value in body.values():
            if isinstance(value, list):
                return value
    return expect_list(body, provider="nebius", source=source)


def _strings(value: Any, *keys: str) -> list[str]:
    """Strings from a list of strings, or from the named keys of a list of objects."""
    out: list[str] = []
    for item in value if isinstance(value, list) else [value] if value else []:
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict):
            for key in keys:
                if isinstance(item.get(key), str):
                    out.append(item[key])
    return out


def _ints(value: Any) -> list[int]:
    return [int(v) for v in (value if isinstance(value, list) else [value]) if isinstance(v, int | float)]


def parse_templates(body: Any, source: str = f"GET {PATH}/templates") -> list[Template]:
    """Both documented shapes: `flavors` as a list of `{flavor_name, ...}` or as a name -> object map."""
    templates = []
    for raw in _list_of(body, source, "templates", "items", "data"):
        if not isinstance(raw, dict):
            continue
        name = raw.get("template_name") or raw.get("model_name") or raw.get("name")
        if not name:
            continue
        flavors_raw = raw.get("flavors") or []
        if isinstance(flavors_raw, dict):
            flavors_raw = [
                {"flavor_name": k, **(v if isinstance(v, dict) else {})} for k, v in flavors_raw.items()
            ]
        flavors, gpu_types, counts, regions = [], [], [], []
        for f in [raw, *flavors_raw]:
            if not isinstance(f, dict):
                continue
            if f is not raw and f.get("flavor_name"):
                flavors.append(f["flavor_name"])
            gpus = f.get("gpu_types") or f.get("gpus") or f.get("hardware") or []
            gpu_types += _strings(gpus, "gpu_type", "name") + _strings(f.get("gpu_type"))
            counts += _ints(f.get("gpu_counts") or f.get("gpu_count") or [])
            for g in gpus if isinstance(gpus, list) else []:
                if isinstance(g, dict):
                    counts += _ints(g.get("gpu_counts") or g.get("gpu_count") or [])
            regions += _strings(f.get("regions") or f.get("region") or [], "region", "name")
        templates.append(
            Template(
                provider="nebius",
                name=name,
                description=raw.get("description"),
                flavors=list(dict.fromkeys(flavors)),
                gpu_types=list(dict.fromkeys(gpu_types)),
                gpu_counts=sorted(set(counts)),
                regions=list(dict.fromkeys(regions)),
                details={k: v for k, v in raw.items() if k not in ("flavors",)},
            )
        )
    return templates


# ---- the adapter ------------------------------------------------------------------------------
class NebiusProvider(Provider):
    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.credential('nebius_api_key')}"}

    def inference_base(self, region: str | None) -> str:
        if self.settings.nebius_inference_base_url:
            return self.settings.nebius_inference_base_url
        return INFERENCE_BASE.get(region or "eu-north1", INFERENCE_BASE["eu-north1"])

    # ---- prices (Nebius's API has none: only what the user configured) ---------------------
    def gpu_price(self, gpu_type: str | None) -> float | None:
        return self.settings.nebius_gpu_usd_per_hour.get(gpu_type or "")

    def price_source(self, gpu_type: str | None) -> str:
        if self.gpu_price(gpu_type) is None:
            return NO_PRICE + " (set nebius_gpu_usd_per_hour to estimate)"
        return "your nebius_gpu_usd_per_hour setting (estimate)"

    def offer_price(self, gpu_type: str, gpu_count: int) -> dict[str, Any]:
        price = self.gpu_price(gpu_type)
        if price is None:
            return {}
        usd = round(price * gpu_count, 6)
        return {"price": usd, "currency": "USD", "usd_per_hour": usd, "price_estimated": True}

    def cost(self, gpu_type: str | None, gpu_count: int, low: int, high: int) -> dict[str, Any]:
        """Plan cost fields: USD/hour at `low` replicas and at `high`, and where the figure comes from."""
        price = self.gpu_price(gpu_type)
        per_replica = None if price is None else price * gpu_count
        return {
            "usd_per_hour": None if per_replica is None else round(per_replica * low, 6),
            "usd_per_hour_max": None if per_replica is None else round(per_replica * high, 6),
            "price_source": self.price_source(gpu_type),
            "gpus": gpu_count * high,
            "gpu_name": gpu_type,
        }

    # ---- mapping ---------------------------------------------------------------------------
    def to_resource(self, ep: Endpoint) -> Resource:
        dep = ep.deployment.status.lower() if ep.deployment and ep.deployment.status else None
        if ep.enabled is False and dep in (None, "stopped"):
            status: Status = "stopped"
        else:
            status = STATUS.get(dep or "", "unknown")
        raw = ep.deployment.status if ep.deployment and ep.deployment.status else None
        if raw is None and ep.enabled is False:
            raw = "disabled"
        return Resource(
            provider=self.name,
            kind="endpoint",
            resource_id=ep.id,
            name=ep.name,
            status=status,
            raw_status=raw,
            region=ep.region,
            gpu_name=ep.gpu_type,
            gpu_count=ep.gpu_count,
            replicas=ep.deployment.ready_replicas if ep.deployment else None,
            min_replicas=ep.scaling.min_replicas if ep.scaling else None,
            max_replicas=ep.scaling.max_replicas if ep.scaling else None,
            url=self.inference_base(ep.region) + "/v1/chat/completions",
            model=ep.routing_key,
            created_at=ep.created_at,
            usd_per_hour=self._running_cost(ep),
            details=self.mask(ep.model_dump(mode="json", exclude_none=True)),
        )

    def _running_cost(self, ep: Endpoint) -> float | None:
        """Estimated USD/hour now: configured price x GPUs x ready replicas (None without a price)."""
        price = self.gpu_price(ep.gpu_type)
        if price is None:
            return None
        replicas = ep.deployment.ready_replicas if ep.deployment and ep.deployment.ready_replicas else 0
        return round(price * (ep.gpu_count or 1) * replicas, 6)

    def _endpoint(self, body: Any, source: str, at: tuple[int | str, ...] = ()) -> Endpoint:
        if isinstance(body, dict) and isinstance(body.get("endpoint"), dict):
            body, at = body["endpoint"], (*at, "endpoint")
        return self.parse(Endpoint, body, source, at)

    # ---- reads -----------------------------------------------------------------------------
    async def list_templates(self) -> list[Template]:
        return parse_templates(await self.http.request("GET", f"{PATH}/templates"))

    async def list_offers(self, *, refresh: bool = False) -> list[Offer]:
        offers: dict[tuple[str, int, str], Offer] = {}
        for t in await self.list_templates():
            for gpu in t.gpu_types or []:
                for count in t.gpu_counts or [1]:
                    for region in t.regions or list(INFERENCE_BASE):
                        key = (gpu, count, region)
                        if key not in offers:
                            offers[key] = Offer(
                                provider=self.name,
                                kind="endpoint",
                                offer_id=gpu,
                                gpu_name=gpu,
                                gpu_count=count,
                                gpu_memory_gb=gpu_memory_gb(gpu),
                                region=region,
                                available=True,
                                details={"models": [], "note": self.price_source(gpu)},
                                **self.offer_price(gpu, count),
                            )
                        offers[key].details["models"].append(t.name)
        return list(offers.values())

    async def list_regions(self) -> list[Region]:
        seen: list[str] = []
        for t in await self.list_templates():
            seen += [r for r in t.regions if r not in seen]
        return [
            Region(
                provider=self.name,
                region_id=r,
                name=REGION_NAMES.get(r),
                details={"inference": self.inference_base(r)},
            )
            for r in seen or list(INFERENCE_BASE)
        ]

    async def _endpoints(self) -> list[Endpoint]:
        return [
            self._endpoint(e, f"GET {PATH}", (i,))
            for i, e in enumerate(
                _list_of(await self.http.request("GET", PATH), f"GET {PATH}", "endpoints", "items")
            )
        ]

    async def list_resources(self) -> list[Resource]:
        return [self.to_resource(e) for e in await self._endpoints()]

    async def _find(self, resource_id: str) -> Endpoint:
        for ep in await self._endpoints():
            if ep.id == resource_id:
                return ep
        raise NotFound(
            f"no dedicated endpoint {resource_id!r}", provider=self.name, hint="See list_resources."
        )

    async def get_resource(self, resource_id: str, *, reveal_secrets: bool = False) -> Resource:
        return self.to_resource(await self._find(resource_id))

    async def chat(self, data: ChatInput) -> ChatResult:
        ep = await self._find(data.resource_id)
        if not ep.routing_key:
            raise InvalidInput(
                f"endpoint {ep.id} has no routing_key yet; wait until it runs.", provider=self.name
            )
        messages = ([{"role": "system", "content": data.system}] if data.system else []) + [
            {"role": "user", "content": data.message}
        ]
        body: dict[str, Any] = {"model": ep.routing_key, "messages": messages, "max_tokens": data.max_tokens}
        if data.temperature is not None:
            body["temperature"] = data.temperature
        try:
            answer = await self.http.request(
                "POST", "/v1/chat/completions", json_body=body, base_url=self.inference_base(ep.region)
            )
        except NotFound as exc:
            exc.hint = (
                "The endpoint may still be starting (this takes up to 15 minutes); wait_for_resource first."
            )
            raise
        try:
            choice = answer["choices"][0]
            return ChatResult(
                provider=self.name,
                resource_id=ep.id,
                model=answer.get("model") or ep.routing_key,
                content=choice["message"]["content"] or "",
                finish_reason=choice.get("finish_reason"),
                usage=answer.get("usage"),
            )
        except (KeyError, IndexError, TypeError):
            raise MalformedResponse("chat answer has no choices[0].message", provider=self.name) from None

    # ---- mutations -------------------------------------------------------------------------
    def finish_endpoint(self, source: str) -> Callable[[Any], Awaitable[Resource]]:
        async def finish(answer: Any) -> Resource:
            return self.to_resource(self._endpoint(answer, source))

        return finish

    async def check_template(self, data: NebiusCreateEndpoint) -> None:
        """Refuse a model/flavor/GPU/region the templates do not offer, before anything is sent."""
        templates = {t.name: t for t in await self.list_templates()}
        t = templates.get(data.model_name)
        if templates and t is None:
            raise InvalidInput(
                f"no template for model {data.model_name!r}. Available: {', '.join(sorted(templates))}.",
                provider=self.name,
            )
        if t is None:
            return
        for field, allowed in (("flavor_name", t.flavors), ("gpu_type", t.gpu_types), ("region", t.regions)):
            value = getattr(data, field)
            if allowed and value not in allowed:
                raise InvalidInput(
                    f"{field} {value!r} is not offered for {t.name}. Choose from: {', '.join(allowed)}.",
                    provider=self.name,
                )
        if t.gpu_counts and data.gpu_count not in t.gpu_counts:
            raise InvalidInput(
                f"gpu_count {data.gpu_count} is not offered for {t.name}. Choose from: {t.gpu_counts}.",
                provider=self.name,
            )

    async def plan_update(self, data: UpdateInput) -> Plan:
        ep = await self._find(data.resource_id)
        body: dict[str, Any] = {}
        for field in ("name", "description", "gpu_type", "gpu_count"):
            if getattr(data, field) is not None:
                body[field] = getattr(data, field)
        lo, hi = data.min_replicas, data.max_replicas
        if data.replicas is not None:
            if lo is not None or hi is not None:
                raise InvalidInput("give either replicas or min/max_replicas, not both.", provider=self.name)
            lo = hi = data.replicas
        if lo is not None or hi is not None:
            cur = ep.scaling or Scaling(min_replicas=1, max_replicas=1)
            scaling = Scaling(
                min_replicas=cur.min_replicas if lo is None else lo,
                max_replicas=cur.max_replicas if hi is None else hi,
            )
            if scaling.min_replicas > scaling.max_replicas:
                raise InvalidInput(
                    f"min_replicas {scaling.min_replicas} would exceed max_replicas {scaling.max_replicas}.",
                    provider=self.name,
                )
            body["scaling"] = scaling.model_dump()
        gpu_count = body.get("gpu_count", ep.gpu_count) or 1
        scaling_now = ep.scaling or Scaling(min_replicas=1, max_replicas=1)
        min_rep = body.get("scaling", {}).get("min_replicas", scaling_now.min_replicas)
        max_rep = body.get("scaling", {}).get("max_replicas", scaling_now.max_replicas)
        changes = ", ".join(
            _replicas(min_rep, max_rep, scaling_now) if k == "scaling" else f"{k}={v}"
            for k, v in body.items()
        )
        return self.plan(
            operation="update_resource",
            action=f"Update Nebius endpoint {ep.name or ep.id}: {changes}.",
            target=ep.id,
            request=WireRequest(method="PATCH", path=f"{PATH}/{ep.id}", json_body=body),
            finish=self.finish_endpoint(f"PATCH {PATH}/{ep.id}"),
            reversible=True,
            reversibility="update it again with the previous values.",
            **self.cost(body.get("gpu_type", ep.gpu_type), gpu_count, min_rep, max_rep),
        )

    async def _plan_enabled(self, resource_id: str, enabled: bool) -> Plan:
        ep = await self._find(resource_id)
        operation = "start_resource" if enabled else "stop_resource"
        # `enabled` is what start and stop set: a disabled endpoint still draining may be started
        state: Status = "unknown" if ep.enabled is None else ("running" if ep.enabled else "stopped")
        self.refuse_no_op(
            operation, state, f"endpoint {ep.name or ep.id}", "enabled" if ep.enabled else "disabled"
        )
        verb = "Start" if enabled else "Stop"
        return self.plan(
            operation=operation,
            action=f"{verb} Nebius endpoint {ep.name or ep.id} (PATCH enabled={str(enabled).lower()}).",
            target=ep.id,
            request=WireRequest(method="PATCH", path=f"{PATH}/{ep.id}", json_body={"enabled": enabled}),
            finish=self.finish_endpoint(f"PATCH {PATH}/{ep.id}"),
            reversible=True,
            reversibility=(
                "stop it again with stop_resource." if enabled else "start it again with start_resource."
            ),
            **(
                self.cost(
                    ep.gpu_type,
                    ep.gpu_count or 1,
                    ep.scaling.min_replicas if ep.scaling else 1,
                    ep.scaling.max_replicas if ep.scaling else 1,
                )
                if enabled
                else {"gpu_name": ep.gpu_type}
            ),
        )

    async def plan_stop(self, data: StopInput) -> Plan:
        return await self._plan_enabled(data.resource_id, False)

    async def plan_start(self, resource_id: str) -> Plan:
        return await self._plan_enabled(resource_id, True)

    async def plan_delete(self, resource_id: str) -> Plan:
        ep = await self._find(resource_id)

        async def finish(answer: Any) -> Any:
            return answer if answer is not None else {"deleted": ep.id}

        return self.plan(
            operation="delete_resource",
            action=f"Delete Nebius endpoint {ep.name or ep.id} ({ep.model_name}) permanently.",
            target=ep.id,
            request=WireRequest(method="DELETE", path=f"{PATH}/{ep.id}"),
            finish=finish,
            reversible=False,
            reversibility="deleting an endpoint is permanent; its configuration and replicas are released.",
        )


def _replicas(lo: int, hi: int, was: Scaling) -> str:
    """A scaling change in words: "scaling: 1–3 replicas (was 1)"."""

    def span(a: int, b: int) -> str:
        return f"{a}" if a == b else f"{a}–{b}"

    return f"scaling: {span(lo, hi)} replicas (was {span(was.min_replicas, was.max_replicas)})"
