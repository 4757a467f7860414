"""Sandbox of the NeoLink AI computing API (regions, GPU SKUs, instances).

Mounted under `/neolink`, serving the documented paths under `/mdc/api/v1`. Every call must carry
`namespace: sandbox-user` (the sandbox settings' user id) and `Authorization: bearer <key>`.
Instances move Creating -> Running after `ready_after` seconds; `power_off` moves them
Shutting Down -> Shutdown (saving a snapshot image when `needSnapshot` is set, recorded in the
`neolink.snapshots` store and on the instance's annotations), `power_on` Starting -> Running, and
delete Deleting -> gone. Creating takes GPUs from the SKU's `remainGPUCount`; deleting returns them.
Prices are CNY per hour. The error body `{code, msg}` is inferred: the docs show none.
"""

from __future__ import annotations

import copy
import re
from datetime import timedelta, timezone
from functools import partial
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gpu_tools.sandbox.state import Sandbox, bearer_token

PROVIDER = "neolink"
PREFIX = "/mdc/api/v1"
NAMESPACE = "sandbox-user"
HARBOR = "images.neolink-ai.com"
PAGE_SIZE = 10  # instances per page when `pageSize` is not given
MAX_PAGE_SIZE = 100  # a larger `pageSize` is served at this size
BEIJING = "14c5a9e3-0d09-4aa0-99d3-c096b80cceaa"
SHANGHAI = "5b0e8f7a-2c41-4d6e-9a1f-3e7c2b9d4a60"
REGIONS: list[dict[str, Any]] = [
    {
        "id": BEIJING,
        "region": "北京一区",
        "clusterName": "host-cluster",
        "harborAddr": HARBOR,
        "howlerID": "69e377a7-99d1-cca0-ef58-cfce14a336b2",
        "createdAt": "2024-07-15T12:00:23.227+08:00",
        "updatedAt": "2024-07-15T12:00:23.227+08:00",
    },
    {
        "id": SHANGHAI,
        "region": "上海二区",
        "clusterName": "sh2-cluster",
        "harborAddr": HARBOR,
        "howlerID": "0d6c4f2e-8a31-4b7d-b5e9-1c2a3f4e5d60",
        "createdAt": "2025-03-02T09:30:00.000+08:00",
        "updatedAt": "2025-03-02T09:30:00.000+08:00",
    },
]
_CPU = {"cpuArch": "x86-64", "cpuSeries": "Intel Xeon", "cpuVendor": "Intel"}


def _sku(
    sku_id: str,
    name: str,
    region: dict[str, Any],
    *,
    gpus: int,
    gpu_memory: int,
    cpus: int,
    memory: int,
    selling: str,
    price: float,
    remain: int,
    discount: float | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": name,
        "regionID": region["id"],
        **_CPU,
        "cpucores": cpus,
        "memoryCount": memory,
        "gpuSeries": name,
        "gpuProduct": name,
        "gpuResourceKey": f"nvidia.com/gpu-{name.lower()}",
        "gpuCounts": gpus,
        "gpuMemory": gpu_memory,
        "systemstorage": 30,
        "datastorage": 50,
        "skusID": sku_id,
        "regionName": region["region"],
        "clusterName": region["clusterName"],
        "sellingType": selling,
        "ratio": 1,
        "discountID": "",
        "discountStartTime": "",
        "discountEndTime": "",
        "price": price,
        "remainGPUCount": remain,
    }
    if discount is not None:
        out.update(
            ratio=discount,
            discountID="10000",
            discountStartTime="2026-01-01T00:00:00+08:00",
            discountEndTime="2026-12-31T23:59:59+08:00",
        )
    return out


_BJ, _SH = REGIONS
SKUS: list[dict[str, Any]] = [
    _sku(
        "2",
        "H20",
        _BJ,
        gpus=1,
        gpu_memory=96,
        cpus=24,
        memory=192,
        selling="1",
        price=10,
        remain=8,
        discount=0.48,
    ),
    _sku("66", "4090", _BJ, gpus=1, gpu_memory=24, cpus=16, memory=96, selling="1", price=2.5, remain=16),
    _sku("67", "4090", _BJ, gpus=1, gpu_memory=24, cpus=16, memory=96, selling="2", price=1.9, remain=16),
    _sku("88", "H100", _BJ, gpus=1, gpu_memory=80, cpus=20, memory=240, selling="1", price=25, remain=4),
    _sku("89", "H100", _BJ, gpus=8, gpu_memory=80, cpus=160, memory=1920, selling="1", price=198, remain=8),
    _sku("101", "A800", _SH, gpus=1, gpu_memory=80, cpus=16, memory=128, selling="1", price=12, remain=6),
    _sku("102", "4090", _SH, gpus=1, gpu_memory=24, cpus=16, memory=96, selling="4", price=2.2, remain=0),
    _sku("103", "H20", _SH, gpus=1, gpu_memory=96, cpus=24, memory=192, selling="3", price=8.5, remain=8),
]
PRICED_GPUS = sorted({s["name"] for s in SKUS})
PHASE_AFTER = {"Creating": "Running", "Starting": "Running", "Shutting Down": "Shutdown"}
TERM = {"2": "M", "3": "W", "4": "D"}
COST_TIME = re.compile(r"^\+?[1-9][0-9]{0,3}([DWM])$")
CST = timezone(timedelta(hours=8))


def error(status: int, message: str, path: str) -> Response:
    """The error body is not documented; `{code, msg}` is the common shape of such Go APIs."""
    return JSONResponse({"code": status, "msg": message}, status_code=status)


def _now(sb: Sandbox) -> str:
    return sb.wall().astimezone(CST).isoformat(timespec="seconds")


def _truthy(value: Any) -> bool:
    """`needSnapshot` is documented as a string and sent as a boolean in the example: accept both."""
    return value is True or (isinstance(value, str) and value.strip().lower() in ("true", "1", "yes"))


base = f"{PREFIX}/clusters/{{cluster}}/instances"


def instances(sb: Sandbox) -> dict[str, dict[str, Any]]:
    return sb.store("neolink.instances")


def remaining(sb: Sandbox) -> dict[str, int]:
    remain = sb.store("neolink.remain")
    if not remain:
        remain.update({s["skusID"]: s["remainGPUCount"] for s in SKUS})
    return remain


def price(sb: Sandbox, sku: dict[str, Any]) -> float:
    """The SKU's hourly price, moved by POST /_sandbox/prices."""
    return round(sku["price"] * sb.price_factor(PROVIDER, sku["name"]), 6)


def skus_of(sb: Sandbox, region_id: str) -> list[dict[str, Any]]:
    remain = remaining(sb)
    return [
        {**s, "remainGPUCount": remain[s["skusID"]], "price": price(sb, s)}
        for s in SKUS
        if s["regionID"] == region_id
    ]


def authorized(sb: Sandbox, request: Request) -> Response | None:
    path = request.url.path
    token = bearer_token(request)
    if token is None:
        return error(401, "missing bearer token", path)
    if token != sb.api_key:
        return error(401, "invalid token", path)
    namespace = request.headers.get("namespace")
    if not namespace:
        return error(401, "missing namespace header", path)
    if namespace != NAMESPACE:
        return error(403, f"token does not belong to namespace {namespace}", path)
    return None


def view(sb: Sandbox, inst: dict[str, Any]) -> dict[str, Any] | None:
    """The instance as the API shows it now (phases advanced), or None once deleted."""
    return render(inst) if advance(sb, inst) else None


def advance(sb: Sandbox, inst: dict[str, Any]) -> bool:
    """Move the instance along with the clock; False once it is gone."""
    phase = inst["_phase"]
    if sb.elapsed(inst["_since"]) >= sb.ready_after:
        if phase == "Deleting":
            instances(sb).pop(inst["name"], None)
            return False
        if phase in PHASE_AFTER:
            inst["_phase"], inst["_since"] = PHASE_AFTER[phase], sb.clock()
            if inst["_phase"] == "Running" and not inst.get("Pods"):
                inst["Pods"] = [
                    {
                        "Name": f"{inst['name']}-{sb.new_id()[:5]}",
                        "Containers": [{"Name": "worker"}],
                        "nodeScheduled": f"gpu-{inst['resources']['GPUType'].lower()}-03",
                        "ip": "172.31.213.79",
                    }
                ]
    return True


def render(inst: dict[str, Any]) -> dict[str, Any]:
    out = {k: copy.deepcopy(v) for k, v in inst.items() if not k.startswith("_")}
    out["status"] = inst["_phase"]
    if inst["_phase"] == "Creating":
        out.pop("servers", None)
    if inst["_phase"] != "Running":
        out.pop("Pods", None)
    return out


def find(sb: Sandbox, request: Request) -> tuple[dict[str, Any] | None, Response | None]:
    cluster = request.path_params["cluster"]
    name = request.path_params.get("name") or request.query_params.get("name") or ""
    inst = instances(sb).get(name)
    if inst is None or inst["_cluster"] != cluster or not advance(sb, inst):
        return None, error(404, f"instance {name} not found", request.url.path)
    return inst, None


def known_cluster(request: Request) -> Response | None:
    cluster = request.path_params["cluster"]
    if cluster not in {r["clusterName"] for r in REGIONS}:
        return error(404, f"cluster {cluster} not found", request.url.path)
    return None


async def regions(sb: Sandbox, request: Request) -> Response:
    return authorized(sb, request) or JSONResponse(REGIONS)


async def skus(sb: Sandbox, request: Request) -> Response:
    if denied := authorized(sb, request):
        return denied
    region_id = request.query_params.get("region_id")
    if not region_id:
        return error(400, "region_id is required", request.url.path)
    if region_id not in {r["id"] for r in REGIONS}:
        return error(404, f"region {region_id} not found", request.url.path)
    return JSONResponse(skus_of(sb, region_id))


def create_problem(sb: Sandbox, body: Any, cluster: str, namespace: str) -> str | None:
    if not isinstance(body, dict):
        return "body must be a JSON object"
    cost = body.get("Cost")
    if not isinstance(cost, dict):
        return "Cost is required"
    for key in ("displayName", "image", "namespace"):
        if not isinstance(body.get(key), str) or not body[key].strip():
            return f"{key} is required"
    if body["namespace"] != namespace:
        return f"namespace {body['namespace']} does not match the namespace header"
    volumes = body.get("VolumeMount")
    if not isinstance(volumes, list) or not volumes or not all(isinstance(v, dict) for v in volumes):
        return "VolumeMount is required"
    for v in volumes:
        if "Size" in v and (not isinstance(v["Size"], int) or isinstance(v["Size"], bool) or v["Size"] < 0):
            return "VolumeMount.Size must be a non-negative integer"
    cost_type = str(cost.get("CostType", ""))
    if cost_type not in ("1", "2", "3", "4"):
        return f"invalid CostType {cost.get('CostType')!r}"
    if str(cost.get("DiskSKUID", "")) != "1":
        return f"invalid DiskSKUID {cost.get('DiskSKUID')!r}"
    sku = next((s for s in SKUS if s["skusID"] == str(cost.get("GPUSKUID", ""))), None)
    if sku is None or sku["clusterName"] != cluster:
        return f"GPU SKU {cost.get('GPUSKUID')!r} not found in cluster {cluster}"
    if sku["sellingType"] != cost_type:
        return f"GPU SKU {sku['skusID']} is not sold with CostType {cost_type}"
    cost_time = str(cost.get("CostTime") or "")
    if cost_type == "1" and cost_time:
        return "CostTime is only for prepaid billing"
    if cost_type != "1":
        match = COST_TIME.match(cost_time)
        if match is None or match.group(1) != TERM[cost_type]:
            return f"invalid CostTime {cost_time!r} for CostType {cost_type}"
        if cost.get("CouponID"):
            return "CouponID is only valid for pay-as-you-go"
    region = str(body.get("Region") or "")
    if region and region not in {
        v for r in REGIONS if r["clusterName"] == cluster for v in (r["id"], r["region"], cluster)
    }:
        return f"region {region} is not in cluster {cluster}"
    if remaining(sb)[sku["skusID"]] < sku["gpuCounts"]:
        return f"insufficient GPU resources for SKU {sku['skusID']} ({sku['name']})"
    return None


async def collection(sb: Sandbox, request: Request) -> Response:
    if denied := authorized(sb, request) or known_cluster(request):
        return denied
    cluster = request.path_params["cluster"]
    if request.method == "GET":
        try:
            page = max(1, int(request.query_params.get("page", "1")))
            size = max(1, int(request.query_params.get("pageSize", str(PAGE_SIZE))))
            size = min(size, MAX_PAGE_SIZE)
        except ValueError:
            return error(400, "page and pageSize must be integers", request.url.path)
        alive = [i for i in list(instances(sb).values()) if i["_cluster"] == cluster and advance(sb, i)]
        chunk = [render(i) for i in alive[(page - 1) * size : page * size]]
        return JSONResponse(
            {"hasNextPage": page * size < len(alive), "nodes": chunk, "totalCount": len(alive)}
        )
    if request.method == "DELETE":
        inst, missing = find(sb, request)
        if inst is None:
            return missing  # type: ignore[return-value]
        if inst["_phase"] != "Deleting":
            remaining(sb)[inst["_sku"]] += inst["_gpus"]
            inst["_phase"], inst["_since"] = "Deleting", sb.clock()
        return JSONResponse("ok")
    try:
        body = await request.json()
    except ValueError:
        return error(400, "invalid JSON body", request.url.path)
    if problem := create_problem(sb, body, cluster, request.headers.get("namespace", "")):
        return error(400, problem, request.url.path)
    cost = body["Cost"]
    sku = next(s for s in SKUS if s["skusID"] == str(cost["GPUSKUID"]))
    remaining(sb)[sku["skusID"]] -= sku["gpuCounts"]
    uid = sb.new_id() + "-sandbox"
    name = f"instance-{sb.new_id()[:8]}"
    gw = f"{uid}.gw.neolink-ai.com"
    volumes = [
        {
            "PathInContainer": "/",
            "Type": "local-filesystem",
            "Size": sku["systemstorage"],
            "PVCName": "",
            "displayName": "系统盘",
            "filesystemType": "system",
        }
    ]
    for v in body["VolumeMount"]:
        pvc = f"volume-{sb.new_id()[:8]}"
        volumes.append(
            {
                "PathInContainer": v.get("PathInContainer") or "/root/data",
                "Type": v.get("Type") or "shared-filesystem",
                "Size": v.get("Size") or sku["datastorage"],
                "PVCName": pvc,
                "displayName": f"磁盘-{pvc}",
                "filesystemType": "data",
            }
        )
    inst = {
        "name": name,
        "namespace": body["namespace"],
        "Region": cluster,
        "displayName": body["displayName"],
        "description": "",
        "annotations": {
            "neolink.ai/cost-coupon-id": str(cost.get("CouponID") or ""),
            "neolink.ai/cost-discount-id": sku["discountID"],
            "neolink.ai/cost-disk-sku-id": "1",
            "neolink.ai/cost-gpu-sku-id": sku["skusID"],
            "neolink.ai/cost-order-id": sb.new_id("order-"),
            "neolink.ai/cost-time": str(cost.get("CostTime") or ""),
            "neolink.ai/cost-type": str(cost["CostType"]),
            "neolink.ai/description": "",
            "neolink.ai/display-name": body["displayName"],
            "neolink.ai/gpu.machine": sku["name"],
            "neolink.ai/gpu.resource.key": sku["gpuResourceKey"],
            "neolink.ai/region": cluster,
            "neolink.ai/saveDataEnabled": "false",
            "neolink.ai/unit-price": str(round(price(sb, sku) * 100)),
        },
        "uid": uid,
        "servers": {
            "Jupyterlab": f"http://{gw}/jupyter?token={sb.new_id()}{sb.new_id()}",
            "Tensorboard": f"http://{gw}/monitor",
            "SSH": {
                "sshAddr": f"ssh -p30{len(instances(sb)) % 1000:03d} root@{uid}.gws.neolink-ai.com",
                "sshPassword": "Sbx" + sb.new_id(),
            },
        },
        "image": body["image"],
        "replicas": 1,
        "resources": {
            "cpu": str(sku["cpucores"]),
            "memory": f"{sku['memoryCount']}Gi",
            "GPUNum": str(sku["gpuCounts"]),
            "GPUType": sku["name"],
        },
        "volumeMounts": volumes,
        "creationTimestamp": _now(sb),
        "updateTimestamp": "0001-01-01T00:00:00Z",
        "ScheduleStopTimestamp": "0001-01-01T00:00:00Z",
        "cost": {
            "CostType": str(cost["CostType"]),
            "CostTime": str(cost.get("CostTime") or ""),
            "DiscountID": "",
            "GPUSKUID": sku["skusID"],
            "DiskSKUID": "1",
            "CouponID": str(cost.get("CouponID") or ""),
        },
        "_phase": "Creating",
        "_since": sb.clock(),
        "_cluster": cluster,
        "_sku": sku["skusID"],
        "_gpus": sku["gpuCounts"],
    }
    instances(sb)[name] = inst
    return JSONResponse(view(sb, inst))


async def item(sb: Sandbox, request: Request) -> Response:
    if denied := authorized(sb, request) or known_cluster(request):
        return denied
    inst, missing = find(sb, request)
    if inst is None:
        return missing  # type: ignore[return-value]
    return JSONResponse(render(inst))  # find(sb) advanced it; advancing again could delete it


async def power_off(sb: Sandbox, request: Request) -> Response:
    if denied := authorized(sb, request) or known_cluster(request):
        return denied
    inst, missing = find(sb, request)
    if inst is None:
        return missing  # type: ignore[return-value]
    raw = await request.body()
    try:
        body = await request.json() if raw.strip() else {}
    except ValueError:
        return error(400, "invalid JSON body", request.url.path)
    if not isinstance(body, dict):
        return error(400, "body must be a JSON object", request.url.path)
    grace = body.get("gracePeriodSeconds", 10)
    if grace in ("", None):
        grace = 10
    try:
        grace = int(grace)
    except (TypeError, ValueError):
        return error(400, f"invalid gracePeriodSeconds {grace!r}", request.url.path)
    if grace < 0:
        return error(400, "gracePeriodSeconds must not be negative", request.url.path)
    if inst["_phase"] != "Running":
        return error(400, f"instance {inst['name']} is {inst['_phase']}, not Running", request.url.path)
    if _truthy(body.get("needSnapshot")):
        image = str(body.get("imageName") or "").strip()
        tag = str(body.get("tag") or "").strip() or "latest"
        if not image:
            return error(400, "imageName is required when needSnapshot is true", request.url.path)
        ref = f"{HARBOR}/{NAMESPACE}/{image}:{tag}"
        sb.store("neolink.snapshots")[ref] = {
            "imageName": image,
            "tag": tag,
            "image": ref,
            "instance": inst["name"],
            "createdAt": _now(sb),
        }
        inst["annotations"]["neolink.ai/snapshot-image"] = ref
    inst["_phase"], inst["_since"] = "Shutting Down", sb.clock()
    return JSONResponse("ok")


async def power_on(sb: Sandbox, request: Request) -> Response:
    if denied := authorized(sb, request) or known_cluster(request):
        return denied
    inst, missing = find(sb, request)
    if inst is None:
        return missing  # type: ignore[return-value]
    if inst["_phase"] != "Shutdown":
        return error(400, f"instance {inst['name']} is {inst['_phase']}, not Shutdown", request.url.path)
    inst["_phase"], inst["_since"] = "Starting", sb.clock()
    return JSONResponse("ok")


def routes(sb: Sandbox) -> list[Route]:
    return [
        Route(f"{PREFIX}/regions", partial(regions, sb), methods=["GET"]),
        Route(f"{PREFIX}/skus/computings", partial(skus, sb), methods=["GET"]),
        Route(base, partial(collection, sb), methods=["GET", "POST", "DELETE"]),
        Route(f"{base}/{{name}}", partial(item, sb), methods=["GET"]),
        Route(f"{base}/{{name}}/power_off", partial(power_off, sb), methods=["POST"]),
        Route(f"{base}/{{name}}/power_on", partial(power_on, sb), methods=["POST"]),
    ]
