"""NeoLink AI: the Provider: calls -> normalized models, and mutation plans."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from gpu_tools.errors import InvalidInput, MalformedResponse, NotFound, ProviderError, ProviderRejected
from gpu_tools.http import Kept, Memo
from gpu_tools.journal import Journal
from gpu_tools.models import Offer, Plan, Region, Resource, Status, WireRequest
from gpu_tools.operations import StopInput
from gpu_tools.providers.base import Provider, Truncated
from gpu_tools.settings import Settings

if TYPE_CHECKING:
    import httpx
from gpu_tools.providers.neolink.inputs import NeolinkCreateInstance, NeolinkListSkus
from gpu_tools.providers.neolink.wire import (
    BILLING_TYPES,
    CURRENCY,
    SSH,
    STATUS,
    Cost,
    Instance,
    InstanceList,
    InstanceResources,
    Servers,
    Sku,
    T,
    WireRegion,
    billing_name,
)

# The docs show only the unpaged instance list and its `hasNextPage`/`totalCount`: that request is
# always the first, and most accounts need no other. Only when its answer says there is more are
# pages asked for, with `page` (from 1) and `pageSize`: names the docs do not give (the sandbox's
# assumption), so the adapter checks what it gets: a provider that caps the page lower is followed
# at its own size, and one that ignores `page` is caught by repeated pages (the listing then says it
# is incomplete).
PAGE_SIZE = 100
MAX_PAGES = 200  # pages read at most per cluster (20 000 instances); beyond that the listing says so


# ---- the adapter ------------------------------------------------------------------------------
class NeolinkProvider(Provider):
    stop_takes_snapshot = True
    secret_keys = frozenset({"sshPassword", "ssh_password", "jupyter_token"})

    def __init__(
        self,
        settings: Settings,
        transport: httpx.AsyncBaseTransport | None = None,
        journal: Journal | None = None,
    ) -> None:
        super().__init__(settings, transport=transport, journal=journal)
        # instance name -> cluster, learned from every answer, so lifecycle calls need no search.
        self._cluster_of: dict[str, str] = {}
        # The region list of the last read (or an earlier process's, from the shelf, for
        # catalog_cache_ttl): listings start on it while it is read again.
        self._region_memo: Memo[list[WireRegion]] = Memo(
            lambda: self.settings.catalog_cache_ttl,
            now=self.now,
            kept=Kept(
                self.shelf,
                "regions",
                lambda regions: [
                    r.model_dump(mode="json", by_alias=True, exclude_none=True) for r in regions
                ],
                lambda raw: [WireRegion.model_validate(r) for r in raw],
            ),
        )

    def auth_headers(self) -> dict[str, str]:
        return {
            "namespace": self.credential("neolink_namespace"),
            "Authorization": f"bearer {self.credential('neolink_api_token')}",
        }

    # ---- answers -------------------------------------------------------------------------------
    def _answer(self, body: Any) -> Any:
        """The documented answers are bare JSON. Should the API wrap one in `{code, msg, data}`,
        a non-zero code is an error even under HTTP 200, and a zero code carries `data`."""
        if isinstance(body, dict) and "code" in body and set(body) <= {"code", "msg", "message", "data"}:
            code = body.get("code")
            if code not in (0, "0", 200, "200"):
                message = body.get("msg") or body.get("message") or f"error code {code}"
                raise ProviderRejected(f"{message} (code {code})", provider=self.name)
            return body.get("data")
        return body

    # ---- mapping ---------------------------------------------------------------------------
    def usd_per_hour(self, price: float | None) -> float | None:
        return None if price is None else round(price * self.settings.usd_per_cny, 6)

    def price_source(self, sku: Sku) -> str:
        return (
            f"NeoLink SKU {sku.skus_id} lists {sku.price:g} {CURRENCY} per hour; converted to USD at the "
            f"configured rate usd_per_cny={self.settings.usd_per_cny:g} (an estimate)"
        )

    def to_region(self, r: WireRegion) -> Region:
        return Region(
            provider=self.name,
            region_id=r.id,
            name=r.region,
            details=r.model_dump(mode="json", exclude_none=True, exclude={"id", "region"}),
        )

    def to_offer(self, sku: Sku) -> Offer:
        kinds = sorted(sku.selling_types())
        available = None
        if sku.remain_gpu_count is not None:
            available = sku.remain_gpu_count >= (sku.gpu_counts or 1)
        details: dict[str, Any] = {
            "billing_type": ", ".join(BILLING_TYPES.get(k, f"type {k}") for k in kinds) or None,
            "cost_type": sku.selling_type,
            "region_id": sku.region_id,
            "cluster_name": sku.cluster_name,
            "cpu": " ".join(x for x in (sku.cpu_vendor, sku.cpu_series, sku.cpu_arch) if x) or None,
            "system_storage_gb": sku.system_storage,
            "data_storage_gb": sku.data_storage,
            "remain_gpus": sku.remain_gpu_count,
            "gpu_resource_key": sku.gpu_resource_key,
        }
        if sku.discount_id:
            details["discount"] = {
                "discount_id": sku.discount_id,
                "ratio": sku.ratio,
                "starts": sku.discount_start_time,
                "ends": sku.discount_end_time,
            }
        if sku.price is not None:
            details["price_unit"] = f"{CURRENCY} per hour (the API docs state no unit)"
            details["usd_note"] = (
                f"USD converted from {CURRENCY} at usd_per_cny={self.settings.usd_per_cny:g} (estimate)"
            )
        return Offer(
            provider=self.name,
            kind="instance",
            offer_id=sku.skus_id,
            gpu_name=sku.gpu_product or sku.name,
            gpu_count=sku.gpu_counts,
            gpu_memory_gb=sku.gpu_memory,
            vcpu=sku.cpu_cores,
            ram_gb=sku.memory_count,
            region=sku.region_name or sku.region_id,
            price=sku.price,
            currency=CURRENCY,
            usd_per_hour=self.usd_per_hour(sku.price),
            price_estimated=sku.price is not None,
            available=available,
            details={k: v for k, v in details.items() if v is not None},
        )

    @staticmethod
    def _status(inst: Instance) -> Status:
        return STATUS.get((inst.status or "").strip().lower(), "unknown")

    def to_resource(self, inst: Instance, *, cluster: str | None = None, reveal: bool = False) -> Resource:
        if cluster or inst.region:
            self._cluster_of[inst.name] = cluster or inst.region or ""
        raw = inst.status
        status = self._status(inst)
        res = inst.resources or InstanceResources()
        servers = inst.servers or Servers()
        ssh = servers.ssh or SSH()
        cost = inst.cost or Cost()
        gpu_count: int | None = None
        if res.gpu_num and res.gpu_num.isdigit():
            gpu_count = int(res.gpu_num)
        details: dict[str, Any] = {
            "cluster_name": cluster or inst.region,
            "ssh_address": ssh.ssh_addr,
            "ssh_password": ssh.ssh_password,
            "jupyter_url": servers.jupyterlab,
            "tensorboard_url": servers.tensorboard,
            "billing_type": billing_name(cost.cost_type),
            "cost_type": cost.cost_type,
            "cost_time": cost.cost_time or None,
            "gpu_sku_id": cost.gpu_sku_id,
            "disk_sku_id": cost.disk_sku_id,
            "coupon_id": cost.coupon_id or None,
            "image": inst.image,
            "cpu": res.cpu,
            "memory": res.memory,
            "uid": inst.uid,
            "volumes": [v.dump() for v in inst.volume_mounts] or None,
            "pods": [p.dump() for p in inst.pods] or None,
            "annotations": inst.annotations or None,
            "schedule_stop": inst.schedule_stop_timestamp,
        }
        details = {k: v for k, v in details.items() if v not in (None, "")}
        url = servers.jupyterlab
        if not reveal:
            details = self.mask(details)
            url = self.mask(url)
        return Resource(
            provider=self.name,
            kind="instance",
            resource_id=inst.name,
            name=inst.display_name,
            status=status,
            raw_status=raw,
            region=inst.region,
            gpu_name=res.gpu_type,
            gpu_count=gpu_count,
            replicas=inst.replicas,
            url=url,
            created_at=inst.creation_timestamp,
            sandbox=self.settings.sandbox,
            details=details,
        )

    # ---- reads -----------------------------------------------------------------------------
    async def _read_regions(self) -> list[WireRegion]:
        body = await self.http.request("GET", "/regions")
        return self.parse_list(WireRegion, self._answer(body), "GET /regions")

    async def _regions(self) -> list[WireRegion]:
        """Read on every call (concurrent callers share one read); the answer is kept as the
        region list listings start on."""
        return (await self._region_memo.get(None, self._read_regions, refresh=True)).value

    def _known_regions(self) -> list[WireRegion]:
        kept = self._region_memo.fresh(None)
        return kept.value if kept is not None else []

    async def _per_region(
        self, key: Callable[[WireRegion], str], fn: Callable[[str], Awaitable[T]]
    ) -> list[tuple[str, T]]:
        """`fn` once per distinct `key` of the regions, with its key, in the regions' order.

        The region list is read on every call, and at the same time `fn` already runs for the
        regions known from the last read: a warm call is one round trip, and a region that appeared
        since is still covered (its `fn` starts when the list answers). Work for a region that is
        gone from the list is dropped."""
        started: dict[str, asyncio.Future[T]] = {
            k: asyncio.ensure_future(fn(k)) for k in dict.fromkeys(map(key, self._known_regions()))
        }
        try:
            keys = list(dict.fromkeys(map(key, await self._regions())))
            for k in keys:
                if k not in started:
                    started[k] = asyncio.ensure_future(fn(k))
            return list(zip(keys, await asyncio.gather(*(started[k] for k in keys)), strict=True))
        finally:
            for task in started.values():
                task.cancel()  # only still running for a region that is gone, or after a failure
            await asyncio.gather(*started.values(), return_exceptions=True)

    async def _clusters(self) -> list[str]:
        return list(dict.fromkeys(r.cluster_name for r in await self._regions()))

    async def _region(self, ref: str | None, regions: list[WireRegion] | None = None) -> WireRegion:
        """The region named by id, name or cluster name; the first listed one when `ref` is empty."""
        regions = regions if regions is not None else await self._regions()
        if not regions:
            raise MalformedResponse("the region list is empty", provider=self.name)
        if not ref:
            return regions[0]
        for r in regions:
            if ref in (r.id, r.region, r.cluster_name):
                return r
        known = "; ".join(f"{r.id} ({r.region}, cluster {r.cluster_name})" for r in regions)
        raise InvalidInput(f"unknown region {ref!r}. Known regions: {known}.", provider=self.name)

    async def skus(self, region_id: str) -> list[Sku]:
        body = await self.http.request("GET", "/skus/computings", params={"region_id": region_id})
        return self.parse_list(Sku, self._answer(body), "GET /skus/computings")

    async def list_regions(self) -> list[Region]:
        return [self.to_region(r) for r in await self._regions()]

    async def list_offers(self, *, refresh: bool = False) -> list[Offer]:
        per_region = await self._per_region(lambda r: r.id, self.skus)
        return [self.to_offer(s) for _, skus in per_region for s in skus]

    async def list_skus(self, data: NeolinkListSkus) -> list[Offer]:
        region = await self._region(data.region_id)
        offers = [self.to_offer(s) for s in await self.skus(region.id)]
        return [o for o in offers if o.available is not False] if data.available_only else offers

    async def _page(self, path: str, page: int | None) -> InstanceList:
        """The documented unpaged list (`page` None), or one page of the undocumented paging."""
        params = None if page is None else {"page": page, "pageSize": PAGE_SIZE}
        body = self._answer(await self.http.request("GET", path, params=params))
        return self.parse(InstanceList, body, f"GET {path}")

    async def _instances(self, cluster: str) -> tuple[list[Instance], str | None]:
        """Every instance of a cluster, and a note when the listing is incomplete.

        The documented unpaged request comes first, and is the only one unless its answer says
        there is more. Then its `totalCount` says how many pages of PAGE_SIZE to ask for, all at once
        (the http layer bounds how many are in flight); should the provider serve smaller pages, the
        rest at its size are asked for at once too, and should the list grow meanwhile, pages after
        the last are followed while `hasNextPage` says so."""
        path = f"/clusters/{quote(cluster, safe='')}/instances"
        unpaged = await self._page(path, None)
        seen: dict[str, Instance] = {i.name: i for i in unpaged.nodes}
        note: str | None = None
        if unpaged.has_next_page:
            note = await self._more_pages(path, cluster, unpaged.total_count, seen)
        for name in seen:
            self._cluster_of[name] = cluster
        return list(seen.values()), note

    async def _more_pages(
        self, path: str, cluster: str, total: int | None, seen: dict[str, Instance]
    ) -> str | None:
        """The undocumented paging, into `seen` (which holds the unpaged answer); a note when the
        listing stays incomplete."""
        guess = min(-(-total // PAGE_SIZE) if total else 1, MAX_PAGES)
        pages = list(await asyncio.gather(*(self._page(path, n) for n in range(1, guess + 1))))
        size = len(pages[0].nodes)
        if not size:
            return f"cluster {cluster}: the first page was empty but says more follow; {len(seen)} listed."
        if total and size < PAGE_SIZE:  # served at a smaller size: the rest of its pages at once
            expected = min(-(-total // size), MAX_PAGES)
            pages += await asyncio.gather(*(self._page(path, n) for n in range(guess + 1, expected + 1)))
        repeated = False
        for n, listing in enumerate(pages, 1):
            new = [i for i in listing.nodes if i.name not in seen]
            repeated |= n > 1 and bool(listing.nodes) and not new  # page 1 repeats the unpaged answer
            seen.update((i.name, i) for i in new)
        last, more = len(pages), pages[-1].has_next_page
        while more and not repeated and last < MAX_PAGES:
            last += 1
            listing = await self._page(path, last)
            new = [i for i in listing.nodes if i.name not in seen]
            repeated = bool(listing.nodes) and not new
            seen.update((i.name, i) for i in new)
            more = listing.has_next_page and bool(listing.nodes)
        of = total if total is not None else "more"
        if repeated:
            return (
                f"cluster {cluster}: later pages repeated earlier ones, so the provider seems to ignore "
                f"`page`; {len(seen)} of {of} instances listed."
            )
        if more:
            return f"cluster {cluster}: stopped after {MAX_PAGES} pages of {size}; {len(seen)} of {of} instances listed."
        return None

    async def list_resources(self) -> list[Resource]:
        """Every cluster's instances at once (see `_per_region`); a listing cut short raises
        `Truncated` with what was listed, which a fan-out reports as a partial answer."""

        out: list[Resource] = []
        notes: list[str] = []
        for cluster, (instances, note) in await self._per_region(lambda r: r.cluster_name, self._instances):
            out += [self.to_resource(i, cluster=cluster) for i in instances]
            notes += [note] if note else []
        if notes:
            raise Truncated(out, " ".join(notes), provider=self.name)
        return out

    async def _get(self, cluster: str, name: str) -> Instance:
        answer = await self.http.request("GET", self._instance_path(cluster, name))
        return self.parse(Instance, self._answer(answer), f"GET {self._instance_path(cluster, name)}")

    async def _locate(self, name: str) -> tuple[str, Instance]:
        """The cluster holding instance `name`, and the instance: the remembered cluster first,
        then every region's cluster."""
        tried: list[str] = []
        known = self._cluster_of.get(name)
        if known:
            try:
                return known, await self._get(known, name)
            except NotFound:
                self._cluster_of.pop(name, None)
                tried.append(known)
        for cluster in await self._clusters():
            if cluster in tried:
                continue
            try:
                inst = await self._get(cluster, name)
            except NotFound:
                continue
            self._cluster_of[name] = cluster
            return cluster, inst
        raise NotFound(
            f"no instance {name!r} in any NeoLink cluster", provider=self.name, hint="See list_resources."
        )

    async def get_resource(self, resource_id: str, *, reveal_secrets: bool = False) -> Resource:
        cluster, inst = await self._locate(resource_id)
        return self.to_resource(inst, cluster=cluster, reveal=reveal_secrets)

    async def _sku_of(self, cluster: str, sku_id: str | None) -> Sku | None:
        """The GPU SKU an instance was created from, looked up in its cluster's regions (for prices)."""
        if not sku_id:
            return None
        for region in await self._regions():
            if region.cluster_name != cluster:
                continue
            for sku in await self.skus(region.id):
                if sku.skus_id == sku_id:
                    return sku
        return None

    # ---- mutations -------------------------------------------------------------------------
    async def placement(self, data: NeolinkCreateInstance) -> WireRegion:
        """The region a create goes to: named by `region`, else the first in `cluster_name`, else the
        first listed (the provider's default region); its cluster must match `cluster_name`."""
        regions = await self._regions()
        if data.cluster_name and not data.region:
            region = next((r for r in regions if r.cluster_name == data.cluster_name), None)
            if region is None:
                clusters = ", ".join(dict.fromkeys(r.cluster_name for r in regions))
                raise InvalidInput(
                    f"unknown cluster {data.cluster_name!r}. Known clusters: {clusters}.", provider=self.name
                )
            return region
        region = await self._region(data.region, regions)
        if data.cluster_name and data.cluster_name != region.cluster_name:
            raise InvalidInput(
                f"region {region.region or region.id} is in cluster {region.cluster_name}, "
                f"not {data.cluster_name}.",
                provider=self.name,
            )
        return region

    async def finish_instance(self, answer: Any, cluster: str) -> Resource:
        """The answer of the create (`POST /clusters/{cluster}/instances`) as a resource."""
        inst = self.parse(Instance, self._answer(answer), f"POST /clusters/{cluster}/instances")
        return self.to_resource(inst, cluster=cluster)

    def _finish_ok(
        self, name: str, cluster: str, action: str, extra: dict[str, Any]
    ) -> Callable[[Any], Awaitable[dict[str, Any]]]:
        """Stop, start and delete answer the JSON string "ok"; anything else is reported as is."""

        async def finish(answer: Any) -> dict[str, Any]:
            answer = self._answer(answer)
            if isinstance(answer, str) and answer.strip().lower() not in ("ok", ""):
                raise ProviderError(f"{action} {name} answered {answer!r}", provider=self.name)
            return {"resource_id": name, "cluster_name": cluster, "action": action, "answer": answer, **extra}

        return finish

    def _instance_path(self, cluster: str, name: str) -> str:
        return f"/clusters/{quote(cluster, safe='')}/instances/{quote(name, safe='')}"

    async def plan_stop(self, data: StopInput) -> Plan:
        cluster, inst = await self._locate(data.resource_id)
        self.refuse_no_op(
            "stop_resource", self._status(inst), f"instance {inst.display_name or inst.name}", inst.status
        )
        image, tag, grace = data.snapshot_image_name, data.snapshot_tag, data.grace_period_seconds
        if tag and not image:
            raise InvalidInput("snapshot_tag needs snapshot_image_name.", provider=self.name)
        body: dict[str, Any] = {}
        if grace is not None:
            body["gracePeriodSeconds"] = grace
        body["needSnapshot"] = bool(image)
        if image:
            body["imageName"] = image
            if tag:
                body["tag"] = tag
        warnings = []
        status = STATUS.get((inst.status or "").strip().lower(), "unknown")
        if status != "running":
            warnings.append(
                f"the instance is {inst.status}, not Running; NeoLink may refuse to power it off."
            )
        snapshot = f", saving it as image {image}{':' + tag if tag else ''}" if image else ""
        grace_text = f"{grace}s" if grace is not None else "the default 10s"
        return self.plan(
            operation="stop_resource",
            action=(
                f"Power off NeoLink instance {inst.display_name or inst.name} ({inst.name}) after a grace "
                f"period of {grace_text}{snapshot}."
            ),
            target=inst.name,
            request=WireRequest(
                method="POST", path=self._instance_path(cluster, inst.name) + "/power_off", json_body=body
            ),
            finish=self._finish_ok(
                inst.name,
                cluster,
                "power_off",
                {"snapshot": {"image_name": image, "tag": tag}} if image else {},
            ),
            reversible=True,
            reversibility="power it on again with start_resource; processes still running are killed.",
            warnings=warnings,
        )

    async def plan_start(self, resource_id: str) -> Plan:
        cluster, inst = await self._locate(resource_id)
        self.refuse_no_op(
            "start_resource", self._status(inst), f"instance {inst.display_name or inst.name}", inst.status
        )
        cost = inst.cost or Cost()
        sku: Sku | None = None
        try:
            sku = await self._sku_of(cluster, cost.gpu_sku_id)
        except ProviderError:
            sku = None  # the price is only informative here; the start itself does not depend on it
        res = inst.resources or InstanceResources()
        gpus = int(res.gpu_num) if res.gpu_num and res.gpu_num.isdigit() else None
        billing = billing_name(cost.cost_type)
        return self.plan(
            operation="start_resource",
            action=(
                f"Power on NeoLink instance {inst.display_name or inst.name} ({inst.name})"
                + (f", billed {billing}" if billing else "")
                + "."
            ),
            target=inst.name,
            request=WireRequest(method="POST", path=self._instance_path(cluster, inst.name) + "/power_on"),
            finish=self._finish_ok(inst.name, cluster, "power_on", {}),
            reversible=True,
            reversibility="power it off again with stop_resource.",
            usd_per_hour=self.usd_per_hour(sku.price) if sku else None,
            price_source=self.price_source(sku)
            if sku and sku.price is not None
            else f"GPU SKU {cost.gpu_sku_id} price not found",
            gpus=gpus,
            gpu_name=res.gpu_type,
        )

    async def plan_delete(self, resource_id: str) -> Plan:
        cluster, inst = await self._locate(resource_id)
        path = f"/clusters/{quote(cluster, safe='')}/instances?name={quote(inst.name, safe='')}"

        async def finish(answer: Any) -> dict[str, Any]:
            result = await self._finish_ok(inst.name, cluster, "delete", {})(answer)
            self._cluster_of.pop(inst.name, None)
            return result

        return self.plan(
            operation="delete_resource",
            action=(
                f"Delete NeoLink instance {inst.display_name or inst.name} ({inst.name}) in cluster {cluster} "
                "permanently, with its system disk."
            ),
            target=inst.name,
            request=WireRequest(method="DELETE", path=path),
            finish=finish,
            reversible=False,
            reversibility="deleting an instance is permanent; save what you need (or a snapshot with "
            "stop_resource snapshot_image_name) first.",
        )
