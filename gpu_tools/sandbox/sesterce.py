"""Sandbox of Sesterce Cloud's AI inference API (`/ai-inference/...`, header `x-api-key`).

Instances move PENDING -> DEPLOYING -> ACTIVE, one `ready_after` per step, with a per-region
`deployStatus`; a region without capacity for the hardware reports an `errorMessage` and leaves
the instance PARTIALLYDEPLOYED (or ERROR when no region deployed). Stop -> DISABLED; start goes
back through PENDING and DEPLOYING; a scaling PATCH redeploys (DEPLOYING -> ACTIVE); delete ->
DELETING, then the instance is gone (404). Pricing is deterministic: the hardware's hourly price
per pod times the maximum pods, and 730 hours a month. Registry passwords are kept but never
returned. Errors use the documented `{statusCode, timestamp, path, message}` shape.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from functools import partial
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gpu_tools.sandbox.state import Sandbox

PROVIDER = "sesterce"
ROOT = "/ai-inference"
HOURS_PER_MONTH = 730

L40S_1 = "59651ba4-657a-41d4-8c42-00f34f732375"
L40S_2 = "30328755-51f0-4251-b535-029358700099"
H100_1 = "dc172cc8-0035-4527-958b-775f951e8836"
H100_2 = "7b0e7d52-6c39-4b8e-9f0a-2f1f4c7d9e21"
A100_1 = "c4a1e0f3-2d7b-4f5e-8a91-6b3d2e1f0a77"

MODELS: list[dict[str, Any]] = [
    {
        "id": "12ed7523-432c-48f5-b3cd-32e6726d07c8",
        "name": "stable-diffusion",
        "port": 8000,
        "defaultHardwareId": L40S_1,
        "features": ["image"],
    },
    {
        "id": "201a99c3-7cd4-4831-865e-b261082fda4b",
        "name": "llama-3.1-8b-instruct",
        "port": 80,
        "defaultHardwareId": L40S_1,
        "features": ["chat"],
    },
    {
        "id": "5f0c2b1e-8d6a-4e3f-9b7c-1a2d3e4f5a6b",
        "name": "llama-3.3-70b-instruct",
        "port": 80,
        "defaultHardwareId": H100_2,
        "features": ["chat"],
    },
    {
        "id": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
        "name": "whisper-large-v3",
        "port": 8000,
        "defaultHardwareId": L40S_1,
        "features": ["audio"],
    },
    {
        "id": "3c2b1a09-8f7e-4d6c-b5a4-938271605f4e",
        "name": "bge-m3",
        "port": 80,
        "defaultHardwareId": A100_1,
        "features": ["embedding"],
    },
]


def _hardware(hw_id: str, count: int, gpu: str, memory: int, vcpu: int, ram_gib: int) -> dict[str, Any]:
    short = gpu.removeprefix("NVIDIA-")
    return {
        "id": hw_id,
        "name": f"{count}x{short} / {vcpu} vCPU / {ram_gib}GiB RAM",
        "cpu": vcpu * 1000,
        "ram": ram_gib * 1024,
        "gpu": {"model": gpu, "count": count, "memory": memory},
    }


HARDWARES: list[dict[str, Any]] = [
    _hardware(L40S_1, 1, "NVIDIA-L40S", 48, 16, 232),
    _hardware(L40S_2, 2, "NVIDIA-L40S", 48, 32, 464),
    _hardware(H100_1, 1, "NVIDIA-H100", 80, 24, 232),
    _hardware(H100_2, 2, "NVIDIA-H100", 80, 48, 464),
    _hardware(A100_1, 1, "NVIDIA-A100", 80, 16, 116),
]
# USD per pod-hour, by hardware.
PRICED_GPUS = sorted({h["gpu"]["model"] for h in HARDWARES})
PRICES = {L40S_1: 1.55, L40S_2: 3.1, H100_1: 2.85, H100_2: 5.7, A100_1: 1.95}

REGIONS: list[dict[str, Any]] = [
    {
        "id": 18,
        "name": "Singapore",
        "countryCode": "SG",
        "state": "ACTIVE",
        "capacities": [
            {"hardwareId": L40S_1, "capacity": 38},
            {"hardwareId": L40S_2, "capacity": 10},
            {"hardwareId": H100_1, "capacity": 19},
        ],
    },
    {
        "id": 78,
        "name": "Luxembourg",
        "countryCode": "LU",
        "state": "ACTIVE",
        "capacities": [
            {"hardwareId": L40S_1, "capacity": 40},
            {"hardwareId": H100_1, "capacity": 12},
            {"hardwareId": H100_2, "capacity": 6},
            {"hardwareId": A100_1, "capacity": 8},
        ],
    },
    {
        "id": 36,
        "name": "Frankfurt",
        "countryCode": "DE",
        "state": "ACTIVE",
        "capacities": [
            {"hardwareId": L40S_1, "capacity": 20},
            {"hardwareId": L40S_2, "capacity": 8},
            {"hardwareId": H100_1, "capacity": 0},
        ],
    },
    {
        "id": 52,
        "name": "Chicago",
        "countryCode": "US",
        "state": "ACTIVE",
        "capacities": [
            {"hardwareId": H100_1, "capacity": 24},
            {"hardwareId": H100_2, "capacity": 12},
            {"hardwareId": A100_1, "capacity": 16},
        ],
    },
]
# Keys the create body must carry (the docs mark them required, most of them nullable).
CREATE_KEYS = (
    "modelId",
    "containerPort",
    "name",
    "description",
    "autoScalingConfigurations",
    "podLifetime",
    "envs",
    "hardwareId",
    "startupCommand",
    "registryId",
    "apiKeyIds",
)
NO_CAPACITY = (
    "Not enough capacity for {hw} in {region}. Please choose another region or contact the support team."
)


def _now(sb: Sandbox | None = None) -> str:
    """The sandbox's wall clock (`Sandbox.wall`), or the machine's where no state is at hand (errors)."""
    when = sb.wall() if sb is not None else datetime.now(UTC)
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _object_id() -> str:
    return uuid.uuid4().hex[:24]


def error(status: int, message: str | list[str], path: str) -> Response:
    """The documented error body; `path` as the real service would see it (without the mount)."""
    body = {
        "statusCode": status,
        "timestamp": _now(),
        "path": path.removeprefix(f"/{PROVIDER}"),
        "message": message,
    }
    return JSONResponse(body, status_code=status)


def _capacity(region: dict[str, Any], hardware_id: str) -> int | None:
    return next((c["capacity"] for c in region["capacities"] if c["hardwareId"] == hardware_id), None)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _scaling_problems(confs: Any, hardware_id: str | None, *, pricing: bool = False) -> list[str]:
    """class-validator style messages for `autoScalingConfigurations`."""
    if not isinstance(confs, list) or not confs:
        return ["autoScalingConfigurations must be a non-empty array"]
    regions = {r["id"]: r for r in REGIONS}
    problems = []
    seen: set[int] = set()
    for i, conf in enumerate(confs):
        where = f"autoScalingConfigurations.{i}"
        if not isinstance(conf, dict) or not _is_int(conf.get("regionId")):
            problems.append(f"{where}.regionId must be an integer number")
            continue
        region = regions.get(conf["regionId"])
        if region is None:
            problems.append(f"{where}.regionId {conf['regionId']} does not exist")
        elif hardware_id and _capacity(region, hardware_id) is None:
            problems.append(f"{where}: hardware {hardware_id} is not available in {region['name']}")
        if conf["regionId"] in seen:
            problems.append(f"{where}.regionId {conf['regionId']} is repeated")
        seen.add(conf["regionId"])
        scale = conf.get("scale")
        if (
            not isinstance(scale, dict)
            or not _is_int(scale.get("max"))
            or scale["max"] < (0 if pricing else 1)
        ):
            problems.append(f"{where}.scale.max must be a positive integer")
            continue
        if pricing:
            continue
        if not _is_int(scale.get("min")) or scale["min"] < 0:
            problems.append(f"{where}.scale.min must not be less than 0")
        elif scale["min"] > scale["max"]:
            problems.append(f"{where}.scale.min must not be greater than scale.max")
        if (
            "cooldownPeriod" in scale
            and scale["cooldownPeriod"] is not None
            and not _is_int(scale["cooldownPeriod"])
        ):
            problems.append(f"{where}.scale.cooldownPeriod must be an integer number")
        triggers = scale.get("triggers")
        if triggers is not None and not isinstance(triggers, dict):
            problems.append(f"{where}.scale.triggers must be an object")
        for name, trigger in (triggers or {}).items():
            if name == "http":
                if not (
                    isinstance(trigger, dict)
                    and _is_int(trigger.get("rate"))
                    and _is_int(trigger.get("window"))
                ):
                    problems.append(f"{where}.scale.triggers.http needs integer rate and window")
            elif name in ("cpu", "gpuMemory", "gpuUtilization", "memory"):
                value = trigger.get("threshold") if isinstance(trigger, dict) else None
                if not _is_int(value) or not 1 <= value <= 100:
                    problems.append(f"{where}.scale.triggers.{name}.threshold must be between 1 and 100")
            else:
                problems.append(f"{where}.scale.triggers.{name} is not a known trigger")
    return problems


def _price(sb: Sandbox, hardware_id: str, confs: list[dict[str, Any]], key: str = "max") -> float:
    pods = sum(int(c["scale"].get(key) or 0) for c in confs)
    gpu = next(h["gpu"]["model"] for h in HARDWARES if h["id"] == hardware_id)
    return round(PRICES[hardware_id] * sb.price_factor(PROVIDER, gpu) * pods, 2)


hardwares = {h["id"]: h for h in HARDWARES}
models = {m["id"]: m for m in MODELS}
region_by_id = {r["id"]: r for r in REGIONS}


def authorized(sb: Sandbox, request: Request) -> Response | None:
    if request.headers.get("x-api-key") != sb.api_key:
        return error(403, "API key invalid", request.url.path)
    return None


async def json_body(request: Request) -> tuple[Any, Response | None]:
    try:
        body = await request.json()
    except ValueError:
        return None, error(400, ["body must be valid JSON"], request.url.path)
    if not isinstance(body, dict):
        return None, error(400, ["body must be an object"], request.url.path)
    return body, None


# ---- instance state ------------------------------------------------------------------------
def settle(sb: Sandbox, inst: dict[str, Any]) -> str:
    """The instance's status now, moving it along with the clock."""
    state, since = inst["_state"], inst["_since"]
    step = sb.ready_after
    if state == "deleting":
        return "DELETING"
    if state == "disabled":
        return "DISABLED"
    elapsed = sb.elapsed(since)
    if elapsed < step:
        return "PENDING"
    if elapsed < 2 * step:
        return "DEPLOYING"
    failed = [c for c in containers(inst, "ACTIVE") if c.get("errorMessage")]
    if not failed:
        return "ACTIVE"
    return "ERROR" if len(failed) == len(inst["autoScalingConfigurations"]) else "PARTIALLYDEPLOYED"


def containers(inst: dict[str, Any], status: str) -> list[dict[str, Any]]:
    out = []
    hw = hardwares[inst["hardwareId"]]
    for conf in inst["autoScalingConfigurations"]:
        region = region_by_id[conf["regionId"]]
        wanted = 0 if status in ("DISABLED", "DELETING") else int(conf["scale"].get("min") or 0)
        room = _capacity(region, inst["hardwareId"]) or 0
        deployed = status in ("ACTIVE", "PARTIALLYDEPLOYED", "ERROR")
        item: dict[str, Any] = {
            "regionId": conf["regionId"],
            "scale": conf["scale"],
            "deployStatus": {"total": wanted, "ready": min(wanted, room) if deployed else 0},
        }
        if deployed and wanted > room:
            item["errorMessage"] = NO_CAPACITY.format(hw=hw["name"], region=region["name"])
        out.append(item)
    return out


def alive(sb: Sandbox, inst_id: str) -> dict[str, Any] | None:
    instances: dict[str, dict[str, Any]] = sb.store("sesterce.instances")
    inst = instances.get(inst_id)
    if inst is not None and inst["_state"] == "deleting" and sb.elapsed(inst["_since"]) >= sb.ready_after:
        del instances[inst_id]
        return None
    return inst


def short(sb: Sandbox, inst: dict[str, Any]) -> dict[str, Any]:
    status = settle(sb, inst)
    return {
        "_id": inst["_id"],
        "name": inst["name"],
        "status": status,
        "hourlyPrice": 0.0
        if status in ("DISABLED", "DELETING")
        else _price(sb, inst["hardwareId"], inst["autoScalingConfigurations"], "min"),
        "features": inst["features"],
        "address": inst["address"],
        "createdAt": inst["createdAt"],
        "updatedAt": inst["updatedAt"],
    }


def detail(sb: Sandbox, inst: dict[str, Any]) -> dict[str, Any]:
    out = short(sb, inst)
    # The documented detail reports neither modelId nor registryId; neither does the sandbox.
    return {
        **{k: out[k] for k in ("_id", "name", "status", "hourlyPrice", "features", "address")},
        "containerPort": inst["containerPort"],
        "description": inst["description"],
        "podLifetime": inst["podLifetime"],
        "containers": containers(inst, out["status"]),
        "hardwareId": inst["hardwareId"],
        "envs": inst["envs"],
        "startupCommand": inst["startupCommand"],
        "apiKeysIds": inst["apiKeyIds"],
        "createdAt": inst["createdAt"],
        "updatedAt": inst["updatedAt"],
    }


def field_problems(sb: Sandbox, body: dict[str, Any], hardware_id: str | None) -> list[str]:
    registries: dict[str, dict[str, Any]] = sb.store("sesterce.registries")
    problems = []
    if "containerPort" in body and not (
        _is_int(body["containerPort"]) and 1 <= body["containerPort"] <= 65535
    ):
        problems.append("containerPort must be a number conforming to the specified constraints")
    if "hardwareId" in body and body["hardwareId"] not in hardwares:
        problems.append(f"hardwareId {body['hardwareId']} does not exist")
    if body.get("modelId") is not None and body["modelId"] not in models:
        problems.append(f"modelId {body['modelId']} does not exist")
    if body.get("registryId") is not None and body["registryId"] not in registries:
        problems.append(f"registryId {body['registryId']} does not exist")
    if body.get("podLifetime") is not None and not _is_int(body["podLifetime"]):
        problems.append("podLifetime must be a number conforming to the specified constraints")
    envs = body.get("envs")
    if envs is not None and not (isinstance(envs, dict) and all(isinstance(v, str) for v in envs.values())):
        problems.append("envs must be an object of strings")
    keys = body.get("apiKeyIds")
    if keys is not None and not (isinstance(keys, list) and all(isinstance(k, str) for k in keys)):
        problems.append("apiKeyIds must be an array of strings")
    for key in ("description", "startupCommand"):
        if body.get(key) is not None and not isinstance(body[key], str):
            problems.append(f"{key} must be a string")
    if "autoScalingConfigurations" in body:
        problems += _scaling_problems(body["autoScalingConfigurations"], hardware_id)
    return problems


# ---- catalogue -----------------------------------------------------------------------------
async def list_models(sb: Sandbox, request: Request) -> Response:
    return authorized(sb, request) or JSONResponse(MODELS)


async def list_hardwares(sb: Sandbox, request: Request) -> Response:
    return authorized(sb, request) or JSONResponse(HARDWARES)


async def list_regions(sb: Sandbox, request: Request) -> Response:
    return authorized(sb, request) or JSONResponse(REGIONS)


async def pricing(sb: Sandbox, request: Request) -> Response:
    if denied := authorized(sb, request):
        return denied
    body, bad = await json_body(request)
    if bad:
        return bad
    problems = []
    if body.get("hardwareId") not in hardwares:
        problems.append("hardwareId must be an existing hardware")
    else:
        problems += _scaling_problems(body.get("autoScalingConfigurations"), body["hardwareId"], pricing=True)
    if problems:
        return error(400, problems, request.url.path)
    hour = _price(sb, body["hardwareId"], body["autoScalingConfigurations"])
    return JSONResponse(
        {"currencyCode": "USD", "pricePerHour": hour, "pricePerMonth": round(hour * HOURS_PER_MONTH, 2)},
        status_code=201,
    )


# ---- registries ----------------------------------------------------------------------------
def registry_view(reg: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in reg.items() if k != "password"}


def registry_problems(body: dict[str, Any], keys: tuple[str, ...]) -> list[str]:
    return [f"{k} must be a non-empty string" for k in keys if not (isinstance(body.get(k), str) and body[k])]


async def registry_collection(sb: Sandbox, request: Request) -> Response:
    registries: dict[str, dict[str, Any]] = sb.store("sesterce.registries")
    if denied := authorized(sb, request):
        return denied
    if request.method == "GET":
        return JSONResponse(
            [{k: v for k, v in registry_view(r).items() if k != "username"} for r in registries.values()]
        )
    body, bad = await json_body(request)
    if bad:
        return bad
    if problems := registry_problems(body, ("url", "username", "password", "name")):
        return error(400, problems, request.url.path)
    now = _now(sb)
    reg = {
        "_id": _object_id(),
        "name": body["name"],
        "url": body["url"],
        "username": body["username"],
        "password": body["password"],
        "createdAt": now,
        "updatedAt": now,
    }
    registries[reg["_id"]] = reg
    return JSONResponse(registry_view(reg), status_code=201)


async def registry_item(sb: Sandbox, request: Request) -> Response:
    instances: dict[str, dict[str, Any]] = sb.store("sesterce.instances")
    registries: dict[str, dict[str, Any]] = sb.store("sesterce.registries")
    if denied := authorized(sb, request):
        return denied
    reg = registries.get(request.path_params["id"])
    if reg is None:
        return error(404, "Not found", request.url.path)
    if request.method == "DELETE":
        if any(i["registryId"] == reg["_id"] for i in instances.values()):
            return error(400, "Registry is used by an inference instance", request.url.path)
        del registries[reg["_id"]]
        return Response(status_code=204)
    body, bad = await json_body(request)
    if bad:
        return bad
    if problems := registry_problems(body, ("url", "username", "password")):
        return error(400, problems, request.url.path)
    reg.update(url=body["url"], username=body["username"], password=body["password"], updatedAt=_now(sb))
    return Response(status_code=204)


# ---- instances -----------------------------------------------------------------------------
async def instance_collection(sb: Sandbox, request: Request) -> Response:
    instances: dict[str, dict[str, Any]] = sb.store("sesterce.instances")
    if denied := authorized(sb, request):
        return denied
    if request.method == "GET":
        return JSONResponse([short(sb, i) for i in list(instances.values()) if alive(sb, i["_id"])])
    body, bad = await json_body(request)
    if bad:
        return bad
    problems = [f"{k} should not be undefined" for k in CREATE_KEYS if k not in body]
    if not (isinstance(body.get("name"), str) and body["name"].strip()):
        problems.append("name must be a non-empty string")
    if body.get("modelId") is None and body.get("registryId") is None:
        problems.append("modelId or registryId must be set")
    problems += field_problems(
        sb, body, body.get("hardwareId") if body.get("hardwareId") in hardwares else None
    )
    if problems:
        return error(400, problems, request.url.path)
    inst_id = _object_id()
    slug = re.sub(r"[^a-z0-9]+", "-", body["name"].lower()).strip("-")[:16] or "instance"
    model = models.get(body["modelId"] or "")
    now = _now(sb)
    inst = {
        **{k: body[k] for k in CREATE_KEYS},
        "_id": inst_id,
        "features": model["features"] if model else [],
        "address": f"https://{slug}-{inst_id[-8:]}.ai.sesterce.dev/",
        "createdAt": now,
        "updatedAt": now,
        "_state": "deploy",
        "_since": sb.clock(),
    }
    instances[inst_id] = inst
    return JSONResponse(short(sb, inst), status_code=201)


async def instance_item(sb: Sandbox, request: Request) -> Response:
    if denied := authorized(sb, request):
        return denied
    inst = alive(sb, request.path_params["id"])
    if inst is None:
        return error(404, "Not found", request.url.path)
    if request.method == "GET":
        return JSONResponse(detail(sb, inst))
    if inst["_state"] == "deleting":
        return error(400, "Inference instance is being deleted", request.url.path)
    if request.method == "DELETE":
        inst["_state"], inst["_since"] = "deleting", sb.clock()
        return Response(status_code=204)
    body, bad = await json_body(request)
    if bad:
        return bad
    hardware_id = body.get("hardwareId", inst["hardwareId"])
    if problems := field_problems(sb, body, hardware_id if hardware_id in hardwares else None):
        return error(400, problems, request.url.path)
    if "name" in body:
        return error(400, ["property name should not exist"], request.url.path)
    changed = [k for k in CREATE_KEYS if k in body and body[k] != inst[k]]
    for key in changed:
        inst[key] = body[key]
    inst["updatedAt"] = _now(sb)
    if changed and inst["_state"] == "deploy":
        inst["_since"] = sb.clock() - sb.ready_after  # redeploy: DEPLOYING, then ACTIVE
    return JSONResponse(short(sb, inst))


async def start(sb: Sandbox, request: Request) -> Response:
    if denied := authorized(sb, request):
        return denied
    inst = alive(sb, request.path_params["id"])
    if inst is None:
        return error(404, "Not found", request.url.path)
    status = settle(sb, inst)
    if status not in ("DISABLED", "ERROR", "FAILED"):
        return error(400, f"Inference instance cannot be started while {status}", request.url.path)
    inst["_state"], inst["_since"], inst["updatedAt"] = "deploy", sb.clock(), _now(sb)
    return Response(status_code=204)


async def stop(sb: Sandbox, request: Request) -> Response:
    if denied := authorized(sb, request):
        return denied
    inst = alive(sb, request.path_params["id"])
    if inst is None:
        return error(404, "Not found", request.url.path)
    status = settle(sb, inst)
    if status in ("DISABLED", "DELETING"):
        return error(400, f"Inference instance cannot be stopped while {status}", request.url.path)
    inst["_state"], inst["updatedAt"] = "disabled", _now(sb)
    return Response(status_code=204)


def routes(sb: Sandbox) -> list[Route]:
    return [
        Route(f"{ROOT}/models", partial(list_models, sb), methods=["GET"]),
        Route(f"{ROOT}/hardwares", partial(list_hardwares, sb), methods=["GET"]),
        Route(f"{ROOT}/regions", partial(list_regions, sb), methods=["GET"]),
        Route(f"{ROOT}/registries", partial(registry_collection, sb), methods=["GET", "POST"]),
        Route(f"{ROOT}/registries/{{id}}", partial(registry_item, sb), methods=["PATCH", "DELETE"]),
        Route(f"{ROOT}/instances/pricing", partial(pricing, sb), methods=["POST"]),
        Route(f"{ROOT}/instances", partial(instance_collection, sb), methods=["GET", "POST"]),
        Route(f"{ROOT}/instances/{{id}}", partial(instance_item, sb), methods=["GET", "PATCH", "DELETE"]),
        Route(f"{ROOT}/instances/{{id}}/start", partial(start, sb), methods=["POST"]),
        Route(f"{ROOT}/instances/{{id}}/stop", partial(stop, sb), methods=["POST"]),
    ]
