"""NetMind: the Provider: calls -> normalized models, and mutation plans."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from gpu_tools.errors import InvalidInput, NotFound
from gpu_tools.gpus import canonical_gpu, gpu_memory_gb
from gpu_tools.models import (
    Offer,
    Plan,
    Region,
    Resource,
    Template,
    WireRequest,
)
from gpu_tools.operations import StopInput, UpdateInput
from gpu_tools.providers.base import Provider, Truncated
from gpu_tools.providers.netmind.inputs import (
    NetmindAuth,
    NetmindImage,
    NetmindListMachines,
)
from gpu_tools.providers.netmind.wire import (
    _SAFE_ID,
    AUTHS,
    CONTAINERS,
    ENDPOINT_STATUS,
    FLAVORS,
    ID_FORMAT,
    IMAGES,
    INFERENCE_URL,
    MACHINES,
    PRICE_UNIT,
    SERVICE,
    STATUS_MEANING,
    Auth,
    Container,
    Endpoint,
    Flavor,
    FlavorList,
    Image,
    Machine,
)

# ---- parsing helpers --------------------------------------------------------------------------
PAGE = 50  # page size when walking a whole collection
MAX_PAGES = 40  # a bound on any walk, in case a marker never advances


def _number(value: Any) -> float | None:
    """A price the docs type as a string ("text"): a number when it reads as one."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip().lstrip("$¥").replace(",", ""))
        except ValueError:
            return None
    return None


def _gb(value: float | None) -> float | None:
    """Memory as NetMind gives it: whole GB (`memory_total` 1600 is a 1.6 TB machine, not 1.6 GB)."""
    return None if value is None else float(value)


# ---- the adapter ------------------------------------------------------------------------------
class NetmindProvider(Provider):
    # `value` is the password of an SSH auth (masking every NetMind `value` also covers env-style
    # name/value pairs); `docker_passwd` is a base secret key too, listed for the reader.
    secret_keys = frozenset({"value", "docker_passwd"})

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.credential('netmind_api_key')}"}

    # ---- ids -------------------------------------------------------------------------------
    def parse_id(self, resource_id: str) -> tuple[Literal["endpoint", "container"], str]:
        """Split `endpoint:<service_id>` / `container:<container_id>`; anything else is refused."""
        kind, sep, raw = resource_id.strip().partition(":")
        if sep and kind == "endpoint" and _SAFE_ID.match(raw):
            return "endpoint", raw
        if sep and kind == "container" and raw.isdigit():
            return "container", raw
        raise InvalidInput(
            f"{resource_id!r} is not a NetMind resource id. {ID_FORMAT}, as list_resources returns them.",
            provider=self.name,
        )

    # ---- currency ----------------------------------------------------------------------------
    def to_usd(self, amount: float | None, currency: str) -> tuple[float | None, bool]:
        """USD for an amount in `currency`, and whether it was converted (an estimate)."""
        if amount is None:
            return None, False
        rates = {"USD": 1.0, "CNY": self.settings.usd_per_cny, "NMT": self.settings.usd_per_nmt}
        rate = rates.get(currency.upper())
        if rate is None:
            return None, False
        return round(amount * rate, 6), currency.upper() != "USD"

    def flavor_usd(self, f: Flavor) -> tuple[float | None, bool]:
        """USD per GPU-hour of a flavor: usd_price_unit, else the CNY price converted (estimated)."""
        if f.billing.usd_price_unit is not None:
            return f.billing.usd_price_unit, False
        return self.to_usd(f.billing.cny_price_unit, "CNY")

    # ---- mapping ---------------------------------------------------------------------------
    def flavor_offer(self, f: Flavor) -> Offer:
        usd, estimated = self.flavor_usd(f)
        price, currency = (
            (f.billing.usd_price_unit, "USD")
            if f.billing.usd_price_unit is not None
            else (f.billing.cny_price_unit, "CNY" if f.billing.cny_price_unit is not None else None)
        )
        details = self.mask(f.model_dump(mode="json", exclude_none=True))
        details["price_unit"] = PRICE_UNIT
        return Offer(
            provider=self.name,
            kind="endpoint",
            offer_id=f.flavor_id,
            gpu_name=f.display_name,
            gpu_model=canonical_gpu(f.display_name),
            gpu_count=1,
            gpu_memory_gb=gpu_memory_gb(f.display_name),
            region=f.meta_info.region,
            price=price,
            currency=currency,
            usd_per_hour=usd,
            usd_per_gpu_hour=usd,
            price_estimated=estimated,
            available=None if f.available_num is None else f.available_num > 0,
            details=details,
        )

    def machine_offer(self, m: Machine, currency: str) -> Offer:
        price = _number(m.price)
        usd, estimated = self.to_usd(price, currency)
        details = self.mask(m.model_dump(mode="json", exclude_none=True))
        details["price_unit"] = PRICE_UNIT
        return Offer(
            provider=self.name,
            kind="container",
            offer_id=m.node_name,
            gpu_name=m.gpu_name or "unknown",
            gpu_model=canonical_gpu(m.gpu_name),
            gpu_count=m.gpu_count,
            gpu_memory_gb=_gb(m.gpu_memory) or gpu_memory_gb(m.gpu_name),
            vcpu=m.cpu_count,
            ram_gb=_gb(m.memory_total),
            region=m.region,
            price=price,
            currency=currency,
            usd_per_hour=None if usd is None else round(usd * (m.gpu_count or 1), 6),
            usd_per_gpu_hour=usd,
            price_estimated=estimated,
            available=True,
            details=details,
        )

    def endpoint_resource(self, ep: Endpoint) -> Resource:
        meta, deploy = ep.resource_metadata, ep.deploy_metadata
        raw = ep.status
        url = None
        if isinstance(ep.endpoint_metadata, dict):
            url = next(
                (v for k, v in ep.endpoint_metadata.items() if "url" in k.lower() and isinstance(v, str)),
                None,
            )
        manual = (meta.scale_type or "manual") == "manual"
        return Resource(
            provider=self.name,
            kind="endpoint",
            resource_id=f"endpoint:{ep.service_id}",
            name=ep.name,
            status=ENDPOINT_STATUS.get((raw or "").lower(), "unknown"),
            raw_status=raw,
            gpu_name=meta.resource_display_name,
            gpu_count=deploy.gpu_num,
            replicas=meta.target_instance_number,
            min_replicas=meta.target_instance_number if manual else None,
            max_replicas=meta.target_instance_number if manual else None,
            url=url or INFERENCE_URL.format(service_id=ep.service_id),
            created_at=ep.created_at,
            details=self.mask(ep.model_dump(mode="json", by_alias=True, exclude_none=True)),
        )

    def container_resource(self, c: Container, *, reveal_secrets: bool = False) -> Resource:
        details = c.model_dump(mode="json", exclude_none=True)
        if not reveal_secrets:
            details = self.mask(details)
            for key in ("ssh", "exposed_service", "vscode_service", "jupyter_service"):
                if isinstance(details.get(key), str):
                    details[key] = self.mask(details[key])
        details["status_meaning"] = STATUS_MEANING
        url = c.exposed_service or c.jupyter_service or c.vscode_service or None
        return Resource(
            provider=self.name,
            kind="container",
            resource_id=f"container:{c.id}",
            name=c.name,
            status="unknown",
            raw_status=None if c.status is None else str(c.status),
            gpu_name=c.gpu_name if isinstance(c.gpu_name, str) else None,
            gpu_count=c.gpu,
            url=url if reveal_secrets else self.mask(url),
            created_at=c.created_at,
            details=details,
        )

    def auth_view(self, a: Auth, *, reveal_secrets: bool = False) -> NetmindAuth:
        fields = {"auth_id": a.id, "value": a.value, "created_at": a.created_at}
        return NetmindAuth(**(fields if reveal_secrets else self.mask(fields)))

    def image_view(self, i: Image, *, reveal_secrets: bool = False) -> NetmindImage:
        known = set(NetmindImage.model_fields) | {"id"}
        dumped = i.model_dump(mode="json", exclude_none=True)
        fields = {k: v for k, v in dumped.items() if k in known and k != "id"}
        fields["details"] = {k: v for k, v in dumped.items() if k not in known}
        return NetmindImage(image_id=i.id, **(fields if reveal_secrets else self.mask(fields)))

    # ---- reads: dedicated endpoints ---------------------------------------------------------
    async def flavors(self) -> list[Flavor]:
        body = await self.http.request("GET", FLAVORS)
        return [f for f in self.parse(FlavorList, body, f"GET {FLAVORS}").flavor_list if not f.is_deleted]

    async def find_flavor(self, flavor_id: str) -> Flavor | None:
        return next((f for f in await self.flavors() if f.flavor_id == flavor_id), None)

    async def endpoint(self, service_id: str) -> Endpoint:
        body = await self.http.request("GET", f"{SERVICE}/{service_id}")
        return self.parse(Endpoint, body, f"GET {SERVICE}/{service_id}")

    def tracked_endpoints(self) -> list[str]:
        """Ids of the endpoints this tool created and has not deleted, oldest first.

        NetMind documents no call that lists endpoints; the journal records every create (with the
        id it returned) and every delete, so it is the list of what may still be billed.
        """
        if self.journal is None:
            return []
        return [
            e.resource_id
            for e in self.journal.live()
            if e.provider == self.name and e.resource_id and e.resource_id.startswith("endpoint:")
        ]

    async def list_endpoints(self) -> list[Resource]:
        async def one(rid: str) -> Resource | None:
            try:
                return self.endpoint_resource(await self.endpoint(rid.partition(":")[2]))
            except NotFound:
                return None  # deleted elsewhere (the console, another tool)

        tracked = await self.journal.aio.run(self.tracked_endpoints) if self.journal is not None else []
        found = await asyncio.gather(*(one(rid) for rid in tracked))
        return [r for r in found if r is not None]

    # ---- reads: rent GPU ----------------------------------------------------------------------
    async def machines(self, params: dict[str, Any] | None = None) -> list[Machine]:
        return self.parse_list(
            Machine, await self.http.request("GET", MACHINES, params=params), f"GET {MACHINES}"
        )

    async def machine_offers(self, data: NetmindListMachines) -> list[Offer]:
        params = data.model_dump(exclude_none=True)
        return [self.machine_offer(m, data.currency or "USD") for m in await self.machines(params)]

    async def auths(self, *, limit: int, marker: int | None = None) -> list[Auth]:
        body = await self.http.request("GET", AUTHS, params={"marker": marker, "limit": limit})
        return self.parse_list(Auth, body, f"GET {AUTHS}")

    async def auth(self, auth_id: int) -> Auth:
        return self.parse(Auth, await self.http.request("GET", f"{AUTHS}{auth_id}"), f"GET {AUTHS}{auth_id}")

    async def images(
        self, *, limit: int, marker: str | None = None, image_type: int | None = None
    ) -> list[Image]:
        params = {"image_type": image_type, "marker": marker, "limit": limit}
        return self.parse_list(Image, await self.http.request("GET", IMAGES, params=params), f"GET {IMAGES}")

    async def image(self, image_id: int) -> Image:
        return self.parse(
            Image, await self.http.request("GET", f"{IMAGES}{image_id}"), f"GET {IMAGES}{image_id}"
        )

    async def containers(self, *, limit: int, marker: int | None = None) -> list[Container]:
        body = await self.http.request("GET", CONTAINERS, params={"limit": limit, "marker": marker})
        return self.parse_list(Container, body, f"GET {CONTAINERS}")

    async def container(self, container_id: str | int) -> Container:
        return self.parse(
            Container,
            await self.http.request("GET", f"{CONTAINERS}{container_id}"),
            f"GET {CONTAINERS}{container_id}",
        )

    async def all_containers(self) -> tuple[list[Container], str | None]:
        """Every container, following `marker` (the last id of a page) until a short page, and a
        note when the walk stopped before the end. Marker paging cannot be read in parallel: each
        page needs the last id of the one before."""
        out: list[Container] = []
        marker: int | None = None
        for _ in range(MAX_PAGES):
            page = await self.containers(limit=PAGE, marker=marker)
            out += page
            if len(page) < PAGE:
                return out, None
            if page[-1].id == marker:
                return out, f"containers: the marker stopped advancing after {len(out)}; the list may go on."
            marker = page[-1].id
        return (
            out,
            f"containers: stopped after {MAX_PAGES} pages of {PAGE} ({len(out)} listed); there are more.",
        )

    # ---- unified reads ----------------------------------------------------------------------
    async def list_offers(self, *, refresh: bool = False) -> list[Offer]:
        flavors, machines = await asyncio.gather(self.flavors(), self.machines())
        return [self.flavor_offer(f) for f in flavors] + [self.machine_offer(m, "USD") for m in machines]

    async def list_templates(self) -> list[Template]:
        """The official images (the default image_type), walked page by page."""
        out: list[Template] = []
        marker: str | None = None
        for _ in range(MAX_PAGES):
            page = await self.images(limit=PAGE, marker=marker)
            out += [
                Template(
                    provider=self.name,
                    name=f"{i.image_name}:{i.image_tag}"
                    if i.image_name and i.image_tag
                    else i.name or str(i.id),
                    description=i.description or i.name,
                    details={
                        "image_template_id": i.id,
                        **self.mask(i.model_dump(mode="json", exclude_none=True)),
                    },
                )
                for i in page
            ]
            if len(page) < PAGE or str(page[-1].id) == marker:
                break
            marker = str(page[-1].id)
        return out

    async def list_regions(self) -> list[Region]:
        flavors, machines = await asyncio.gather(self.flavors(), self.machines())
        products: dict[str, set[str]] = {}
        for f in flavors:
            if f.meta_info.region:
                products.setdefault(f.meta_info.region, set()).add("dedicated endpoints")
        for m in machines:
            if m.region:
                products.setdefault(m.region, set()).add("rent GPU")
        return [
            Region(provider=self.name, region_id=r, details={"products": sorted(p)})
            for r, p in sorted(products.items())
        ]

    def can_stop(self, kind: str | None) -> bool:
        return kind != "endpoint"  # containers stop; endpoints only scale or go

    async def find_created(self, row: dict[str, Any]) -> Resource | None:
        if row["operation"] == "netmind_create_endpoint":
            raise self.unsupported(
                "listing endpoints, so an endpoint whose create answer was lost cannot be found by name",
                "Look for it in the NetMind console; until then the journal counts it as live.",
            )
        return await super().find_created(row)

    async def list_resources(self) -> list[Resource]:
        endpoints, (containers, note) = await asyncio.gather(self.list_endpoints(), self.all_containers())
        out = endpoints + [self.container_resource(c) for c in containers]
        if note:
            raise Truncated(out, note, provider=self.name)
        return out

    async def get_resource(self, resource_id: str, *, reveal_secrets: bool = False) -> Resource:
        kind, raw = self.parse_id(resource_id)
        if kind == "endpoint":
            return self.endpoint_resource(await self.endpoint(raw))
        return self.container_resource(await self.container(raw), reveal_secrets=reveal_secrets)

    # ---- pricing for plans ------------------------------------------------------------------
    def endpoint_cost(
        self, flavor: Flavor | None, instances: int, gpu_num: int | None
    ) -> tuple[float | None, str]:
        """USD/hour of `instances` instances of `gpu_num` GPUs (at least one) on `flavor`."""
        gpus = max(gpu_num or 0, 1)
        if flavor is None:
            return None, "flavor not listed by NetMind; price unknown"
        usd, estimated = self.flavor_usd(flavor)
        if usd is None:
            return None, f"flavor {flavor.flavor_id} states no price"
        field = "cny_price_unit converted at settings.usd_per_cny" if estimated else "usd_price_unit"
        return (
            round(usd * instances * gpus, 6),
            f"NetMind flavor {field} ${usd:g} x {instances} instance(s) x {gpus} GPU(s), read per GPU-hour",
        )

    async def machine_cost(
        self, node_name: str | None, gpus: int
    ) -> tuple[Machine | None, float | None, str]:
        """The machine listing `node_name`, and USD/hour of `gpus` of its GPUs."""
        machine = next((m for m in await self.machines() if m.node_name == node_name), None)
        if machine is None:
            return None, None, f"machine {node_name} is not listed now; price unknown"
        usd, estimated = self.to_usd(_number(machine.price), "USD")
        if usd is None:
            return machine, None, f"machine {node_name} states no readable price"
        return (
            machine,
            round(usd * gpus, 6),
            f"NetMind machine price ${usd:g} x {gpus} GPU(s), read per GPU-hour",
        )

    async def plan_update(self, data: UpdateInput) -> Plan:
        kind, raw = self.parse_id(data.resource_id)
        if kind == "container":
            raise self.unsupported(
                "changing a Rent GPU container",
                instead="Delete it and create a new one with netmind_create_container, "
                "or stop_resource / start_resource it.",
            )
        self.reject_fields(
            data,
            ("min_replicas", "max_replicas", "name", "description", "gpu_type", "gpu_count"),
            "endpoint update (only replicas, sent as target_instance_number)",
        )
        if data.replicas is None:
            raise InvalidInput("give replicas (the new target_instance_number).", provider=self.name)
        if data.replicas < 1:
            raise InvalidInput(
                "NetMind documents no scaling to zero instances.",
                provider=self.name,
                hint="Delete the endpoint with delete_resource to stop paying for it.",
            )
        ep = await self.endpoint(raw)
        flavor = await self.find_flavor(ep.resource_metadata.flavor_id or "")
        usd, source = self.endpoint_cost(flavor, data.replicas, ep.deploy_metadata.gpu_num)
        # The documented update example sends the number as a string.
        body = {"resource_metadata": {"target_instance_number": str(data.replicas)}}
        return self.plan(
            operation="update_resource",
            action=(
                f"Scale NetMind endpoint {ep.name or ep.service_id} from "
                f"{ep.resource_metadata.target_instance_number} to {data.replicas} instance(s)."
            ),
            target=data.resource_id,
            request=WireRequest(method="PUT", path=f"{SERVICE}/{raw}", json_body=body),
            finish=self._finish_endpoint(f"PUT {SERVICE}/{raw}"),
            reversible=True,
            reversibility="scale it again with update_resource.",
            usd_per_hour=usd,
            usd_per_hour_max=usd,
            price_source=source,
            gpus=max(ep.deploy_metadata.gpu_num or 0, 1) * data.replicas,
            gpu_name=ep.resource_metadata.resource_display_name,
        )

    def _finish_endpoint(self, source: str) -> Callable[[Any], Awaitable[Resource]]:
        async def finish(answer: Any) -> Resource:
            return self.endpoint_resource(self.parse(Endpoint, answer, source))

        return finish

    def _finish_container(self, source: str) -> Callable[[Any], Awaitable[Resource]]:
        async def finish(answer: Any) -> Resource:
            return self.container_resource(self.parse(Container, answer, source))

        return finish

    # ---- mutations: lifecycle -----------------------------------------------------------------
    async def plan_stop(self, data: StopInput) -> Plan:
        kind, raw = self.parse_id(data.resource_id)
        if kind == "endpoint":
            raise self.unsupported(
                "stopping a dedicated endpoint (its API has no stop call)",
                instead="Scale it with update_resource (replicas), or delete it with delete_resource.",
            )
        c = await self.container(raw)
        return self.plan(
            operation="stop_resource",
            action=f"Stop NetMind container {c.name or c.id} (POST {CONTAINERS}{raw}/stop).",
            target=data.resource_id,
            request=WireRequest(method="POST", path=f"{CONTAINERS}{raw}/stop"),
            finish=self._finish_container(f"POST {CONTAINERS}{raw}/stop"),
            reversible=True,
            reversibility="restart it with start_resource.",
            price_source="stopping adds no cost",
        )

    async def plan_start(self, resource_id: str) -> Plan:
        kind, raw = self.parse_id(resource_id)
        if kind == "endpoint":
            raise self.unsupported(
                "starting a dedicated endpoint (its API has no start or redeploy call)",
                instead="Scale an endpoint with update_resource, or create one with netmind_create_endpoint.",
            )
        c = await self.container(raw)
        _, usd, source = await self.machine_cost(c.node_name, c.gpu or 1)
        return self.plan(
            operation="start_resource",
            action=f"Restart NetMind container {c.name or c.id} on {c.node_name} (POST {CONTAINERS}{raw}/restart).",
            target=resource_id,
            request=WireRequest(method="POST", path=f"{CONTAINERS}{raw}/restart"),
            finish=self._finish_container(f"POST {CONTAINERS}{raw}/restart"),
            reversible=True,
            reversibility="stop it again with stop_resource; GPU time is billed while it runs.",
            usd_per_hour=usd,
            usd_per_hour_max=usd,
            price_source=source,
            gpus=c.gpu,
        )

    async def plan_delete(self, resource_id: str) -> Plan:
        kind, raw = self.parse_id(resource_id)
        if kind == "endpoint":
            ep = await self.endpoint(raw)

            async def finish(answer: Any) -> Any:
                return answer if answer is not None else {"deleted": resource_id}

            return self.plan(
                operation="delete_resource",
                action=f"Delete NetMind endpoint {ep.name or ep.service_id} permanently.",
                target=resource_id,
                request=WireRequest(method="DELETE", path=f"{SERVICE}/{raw}"),
                finish=finish,
                reversible=False,
                reversibility="deleting an endpoint is permanent; its instances are released.",
            )
        c = await self.container(raw)
        return self.plan(
            operation="delete_resource",
            action=f"Delete NetMind container {c.name or c.id} on {c.node_name} permanently.",
            target=resource_id,
            request=WireRequest(method="DELETE", path=f"{CONTAINERS}{raw}"),
            finish=self._finish_container(f"DELETE {CONTAINERS}{raw}"),
            reversible=False,
            reversibility="deleting a container is permanent; its disk is lost.",
        )
