"""Sandbox of NetMind's dedicated-endpoints and Rent GPU APIs (same paths, bearer auth, JSON shapes).

Endpoints move initializing -> available after `ready_after` seconds, and back through
initializing when scaled (as the documented update example answers). Containers move through
integer statuses; NetMind does not publish what its integers mean, so the values here are the
sandbox's own: 0 creating -> 1 running, stop: 2 stopping -> 3 stopped, restart: 0 -> 1. A machine
lists only its GPUs that no running container holds. Invalid bodies, queries and path ids answer
FastAPI's 422 `{"detail": [{"loc", "msg", "type"}]}`; other errors `{"detail": "..."}`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gpu_tools.sandbox.app import Sandbox, bearer_token, fastapi_error, fastapi_invalid

PROVIDER = "netmind"
INFERENCE_URL = "https://api.deeptrin.com/inference-api/v1/inference_service/{service_id}"
USER_ID = "sandbox-user-0001"

FLAVORS: list[dict[str, Any]] = [
    {
        "flavor_id": "69475e82e81c4dd6be3467e2ca374e0c",
        "display_name": "NVIDIA_GeForce_RTX_4090",
        "cluster_id": "1",
        "cluster_flavor_id": "US_01_4090",
        "meta_info": {"cuda": "12.0", "region": "cn"},
        "billing": {"cny_price_unit": 2.2, "usd_price_unit": 0.3, "nmt_price_unit": 0.147164},
        "available_num": 6,
        "node_max_gpu": 2,
        "vram": "24GB",
    },
    {
        "flavor_id": "7b2f36d30e0743debc6c60d5017e2d16",
        "display_name": "NVIDIA_GeForce_RTX_4090",
        "cluster_id": "1",
        "cluster_flavor_id": "US_01_4090",
        "meta_info": {"cuda": "12.0", "region": "other"},
        "billing": {"cny_price_unit": 2.2, "usd_price_unit": 0.3, "nmt_price_unit": 0.147164},
        "available_num": 3,
        "node_max_gpu": 2,
        "vram": "24GB",
    },
    {
        "flavor_id": "a3c1e9d04b8f4f7c9e2d6b5a18f0c7e1",
        "display_name": "NVIDIA_A100_SXM4_80GB",
        "cluster_id": "2",
        "cluster_flavor_id": "US_02_A100",
        "meta_info": {"cuda": "12.2", "region": "other"},
        "billing": {"cny_price_unit": 9.4, "usd_price_unit": 1.3, "nmt_price_unit": 0.637711},
        "available_num": 2,
        "node_max_gpu": 8,
        "vram": "80GB",
    },
    {
        "flavor_id": "e5d2b7a96c3f41d08a7e9c2b4d1f6a38",
        "display_name": "NVIDIA_H100_SXM5_80GB",
        "cluster_id": "3",
        "cluster_flavor_id": "US_03_H100",
        "meta_info": {"cuda": "12.4", "region": "other"},
        "billing": {"cny_price_unit": 17.9, "usd_price_unit": 2.49, "nmt_price_unit": 1.221545},
        "available_num": 4,
        "node_max_gpu": 8,
        "vram": "80GB",
    },
    {
        "flavor_id": "0c9b8a7d6e5f40312a1b2c3d4e5f6a7b",
        "display_name": "NVIDIA_GeForce_RTX_3090",
        "cluster_id": "1",
        "cluster_flavor_id": "CN_01_3090",
        "meta_info": {"cuda": "11.8", "region": "cn"},
        "billing": {"cny_price_unit": 1.1, "usd_price_unit": 0.15, "nmt_price_unit": 0.073582},
        "available_num": 0,
        "node_max_gpu": 2,
        "vram": "24GB",
    },
]
FLAVOR_STAMP = {
    "created_at": "2024-11-13 09:00:19",
    "updated_at": "2024-11-13 09:00:19",
    "deleted_at": None,
    "is_deleted": False,
}

# Rent GPU machines; `gpus` is the node's total, the listing shows what is free. Prices in USD per GPU-hour.
MACHINES: list[dict[str, Any]] = [
    {
        "node_name": "sbx-us-h100-01",
        "cluster": "us-west",
        "gpu_name": "NVIDIA_H100_SXM5_80GB",
        "gpus": 8,
        "gpu_memory": 80,
        "cpu_name": "AMD EPYC 9454",
        "cpu_per_gpu": 12,
        "memory_per_gpu": 200,
        "disk_per_gpu": 1000,
        "region": "US",
        "usd": 2.39,
        "original": 2.99,
        "gpu_id": 5,
        "nvlink_status": True,
    },
    {
        "node_name": "sbx-de-a100-01",
        "cluster": "eu-central",
        "gpu_name": "NVIDIA_A100_SXM4_80GB",
        "gpus": 4,
        "gpu_memory": 80,
        "cpu_name": "Intel Xeon Platinum 8380",
        "cpu_per_gpu": 16,
        "memory_per_gpu": 120,
        "disk_per_gpu": 500,
        "region": "DE",
        "usd": 1.29,
        "original": 1.59,
        "gpu_id": 4,
        "nvlink_status": True,
    },
    {
        "node_name": "sbx-hk-4090-01",
        "cluster": "hk-1",
        "gpu_name": "NVIDIA_GeForce_RTX_4090",
        "gpus": 4,
        "gpu_memory": 24,
        "cpu_name": "AMD EPYC 7543",
        "cpu_per_gpu": 8,
        "memory_per_gpu": 64,
        "disk_per_gpu": 300,
        "region": "HK",
        "usd": 0.35,
        "original": 0.45,
        "gpu_id": 3,
        "nvlink_status": False,
    },
    {
        "node_name": "sbx-jp-3090-01",
        "cluster": "jp-1",
        "gpu_name": "NVIDIA_GeForce_RTX_3090",
        "gpus": 1,
        "gpu_memory": 24,
        "cpu_name": "Intel Core i9-12900K",
        "cpu_per_gpu": 8,
        "memory_per_gpu": 32,
        "disk_per_gpu": 200,
        "region": "JP",
        "usd": 0.18,
        "original": 0.22,
        "gpu_id": 1,
        "nvlink_status": False,
    },
]
PRICED_GPUS = sorted({f["display_name"] for f in FLAVORS} | {m["gpu_name"] for m in MACHINES})
# The sandbox's conversion of its USD prices for the `currency` query.
CURRENCY_PER_USD = {"USD": 1.0, "CNY": 7.2, "NMT": 0.5}

OFFICIAL_IMAGES: list[dict[str, Any]] = [
    {
        "name": "PyTorch 2.6",
        "description": "PyTorch 2.6 with CUDA 12.4",
        "image_name": "pytorch/pytorch",
        "image_tag": "2.6.0-cuda12.4-cudnn9-runtime",
        "image_label": "pytorch",
    },
    {
        "name": "TensorFlow 2.17",
        "description": "TensorFlow 2.17 GPU",
        "image_name": "tensorflow/tensorflow",
        "image_tag": "2.17.0-gpu",
        "image_label": "tensorflow",
    },
    {
        "name": "Ubuntu 22.04",
        "description": "Ubuntu 22.04 with CUDA 12.2 drivers",
        "image_name": "nvidia/cuda",
        "image_tag": "12.2.2-devel-ubuntu22.04",
        "image_label": "ubuntu",
    },
]
IMAGE_TYPES = (0, 1, 2)  # the sandbox's: 0 official (the documented default), 1 public, 2 custom
CUSTOM_IMAGE = 2  # the documented create-image example answers image_type 2
PAYMENT_TYPES = (0, 1, 2)

# Container statuses (the sandbox's own integers; see the module docstring).
CREATING, RUNNING, STOPPING, STOPPED = 0, 1, 2, 3
NEXT_STATUS = {CREATING: RUNNING, STOPPING: STOPPED}
ENDPOINT_NEXT = {"initializing": "available"}

Check = Callable[[Any], str | None]


error = fastapi_error


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _field_error(loc: list[Any], value: Any, typ: type, checks: tuple[Check, ...] = ()) -> Response | None:
    """Pydantic-v2-worded errors for one field of a request body."""
    if typ is int and not _is_int(value):
        return fastapi_invalid(loc, "Input should be a valid integer", "int_type")
    if typ is str and not isinstance(value, str):
        return fastapi_invalid(loc, "Input should be a valid string", "string_type")
    if typ is dict and not isinstance(value, dict):
        return fastapi_invalid(
            loc, "Input should be a valid dictionary or object to extract fields from", "model_type"
        )
    for check in checks:
        if msg := check(value):
            kind, _, text = msg.partition(":")
            return fastapi_invalid(loc, text, kind)
    return None


def _body_errors(
    body: Any, spec: dict[str, tuple[type, bool, tuple[Check, ...]]], prefix: list[Any]
) -> Response | None:
    if not isinstance(body, dict):
        return fastapi_invalid(
            prefix, "Input should be a valid dictionary or object to extract fields from", "model_type"
        )
    for key, (typ, required, checks) in spec.items():
        if key not in body or (body[key] is None and not required):
            if required:
                return fastapi_invalid([*prefix, key], "Field required", "missing")
            continue
        if problem := _field_error([*prefix, key], body[key], typ, checks):
            return problem
    return None


def _length(lo: int, hi: int) -> Check:
    def check(value: str) -> str | None:
        if len(value) < lo:
            return f"string_too_short:String should have at least {lo} characters"
        if len(value) > hi:
            return f"string_too_long:String should have at most {hi} characters"
        return None

    return check


def _between(lo: int, hi: int | None = None) -> Check:
    def check(value: int) -> str | None:
        if value < lo:
            return f"greater_than_equal:Input should be greater than or equal to {lo}"
        if hi is not None and value > hi:
            return f"less_than_equal:Input should be less than or equal to {hi}"
        return None

    return check


def _one_of(values: tuple[int, ...]) -> Check:
    def check(value: int) -> str | None:
        if value not in values:
            return "enum:Input should be " + ", ".join(map(str, values[:-1])) + f" or {values[-1]}"
        return None

    return check


def _query_ints(request: Request, names: tuple[str, ...]) -> tuple[dict[str, int], Response | None]:
    out: dict[str, int] = {}
    for name in names:
        raw = request.query_params.get(name)
        if raw is None or raw == "":
            continue
        try:
            out[name] = int(raw)
        except ValueError:
            return out, fastapi_invalid(
                ["query", name],
                "Input should be a valid integer, unable to parse string as an integer",
                "int_parsing",
            )
    return out, None


def _path_int(request: Request, name: str) -> tuple[int, Response | None]:
    raw = request.path_params[name]
    if not raw.isdigit():
        return 0, fastapi_invalid(
            ["path", name],
            "Input should be a valid integer, unable to parse string as an integer",
            "int_parsing",
        )
    return int(raw), None


async def _json(request: Request) -> tuple[Any, Response | None]:
    try:
        return await request.json(), None
    except ValueError:
        return None, fastapi_invalid(["body"], "JSON decode error", "json_invalid")


ENDPOINT_BODY: dict[str, tuple[type, bool, tuple[Check, ...]]] = {
    "name": (str, True, (_length(1, 128),)),
    "description": (str, False, ()),
    "payment_type": (str, True, ()),
    "resource_metadata": (dict, True, ()),
    "deploy_metadata": (dict, True, ()),
}
RESOURCE_META: dict[str, tuple[type, bool, tuple[Check, ...]]] = {
    "flavor_id": (str, True, ()),
    "scale_type": (str, True, ()),
    "target_instance_number": (int, True, (_between(1, 64),)),
}
DEPLOY_META: dict[str, tuple[type, bool, tuple[Check, ...]]] = {
    "image_url": (str, True, (_length(1, 512),)),
    "command": (str, False, ()),
    "port": (int, True, (_between(1, 65535),)),
    "gpu_num": (int, True, (_between(0, 8),)),
}
AUTH_BODY: dict[str, tuple[type, bool, tuple[Check, ...]]] = {"value": (str, True, (_length(8, 32),))}
IMAGE_BODY: dict[str, tuple[type, bool, tuple[Check, ...]]] = {
    "name": (str, True, ()),
    "description": (str, False, ()),
    "image_name": (str, True, ()),
    "image_tag": (str, True, ()),
    "image_label": (str, True, ()),
    "docker_username": (str, False, ()),
    "docker_passwd": (str, False, ()),
    "docker_registry": (str, False, ()),
    "public_port": (str, False, ()),
    "onstart": (str, False, ()),
    "options": (str, False, ()),
}
CONTAINER_BODY: dict[str, tuple[type, bool, tuple[Check, ...]]] = {
    "name": (str, True, (_length(1, 128),)),
    "auth_id": (int, True, ()),
    "gpu": (int, True, (_between(1, 12),)),
    "node_name": (str, True, ()),
    "image_template_id": (int, True, ()),
    "payment_type": (int, True, (_one_of(PAYMENT_TYPES),)),
}


def routes(sb: Sandbox) -> list[Route]:
    # State is looked up on every call (never captured): tests clear `sb.stores` between runs.
    def store(name: str) -> dict[Any, Any]:
        return sb.store(f"netmind.{name}")

    def next_id(kind: str, start: int) -> int:
        counters = store("counters")
        counters[kind] = counters.get(kind, start) + 1
        return counters[kind]

    def authorized(request: Request) -> Response | None:
        token = bearer_token(request)
        if token is None:
            return error(401, "Not authenticated", request.url.path)
        if token != sb.api_key:
            return error(401, "Invalid token", request.url.path)
        return None

    # ---- dedicated endpoints ------------------------------------------------------------------
    def flavor(flavor_id: str) -> dict[str, Any] | None:
        return next((f for f in FLAVORS if f["flavor_id"] == flavor_id), None)

    def billing(f: dict[str, Any]) -> dict[str, Any]:
        """The flavor's prices, moved by POST /_sandbox/prices."""
        factor = sb.price_factor(PROVIDER, f["display_name"])
        return {k: round(v * factor, 6) for k, v in f["billing"].items()}

    def flavor_view(f: dict[str, Any]) -> dict[str, Any]:
        busy = sum(
            e["resource_metadata"]["target_instance_number"]
            for e in store("endpoints").values()
            if e["resource_metadata"]["flavor_id"] == f["flavor_id"]
        )
        out = {k: v for k, v in f.items() if k != "vram"}
        out["billing"] = billing(f)
        return {**out, **FLAVOR_STAMP, "available_num": max(f["available_num"] - busy, 0)}

    def endpoint_view(ep: dict[str, Any]) -> dict[str, Any]:
        if ep["status"] in ENDPOINT_NEXT and sb.elapsed(ep["_since"]) >= sb.ready_after:
            ep["status"], ep["_since"], ep["updated_at"] = ENDPOINT_NEXT[ep["status"]], sb.clock(), _now()
        return {k: v for k, v in ep.items() if not k.startswith("_")}

    async def flavors(request: Request) -> Response:
        if denied := authorized(request):
            return denied
        return JSONResponse({"flavor_list": [flavor_view(f) for f in FLAVORS]})

    async def create_endpoint(request: Request) -> Response:
        if denied := authorized(request):
            return denied
        body, bad = await _json(request)
        if bad:
            return bad
        problem = (
            _body_errors(body, ENDPOINT_BODY, ["body"])
            or _body_errors(body["resource_metadata"], RESOURCE_META, ["body", "resource_metadata"])
            or _body_errors(body["deploy_metadata"], DEPLOY_META, ["body", "deploy_metadata"])
        )
        if problem:
            return problem
        res, dep = body["resource_metadata"], body["deploy_metadata"]
        f = flavor(res["flavor_id"])
        if f is None:
            return error(400, f"flavor {res['flavor_id']} does not exist", request.url.path)
        if dep["gpu_num"] > f["node_max_gpu"]:
            return error(
                400, f"gpu_num {dep['gpu_num']} exceeds node_max_gpu {f['node_max_gpu']}", request.url.path
            )
        if flavor_view(f)["available_num"] < res["target_instance_number"]:
            return error(400, f"not enough {f['display_name']} resources available", request.url.path)
        service_id = sb.new_id() + sb.new_id()[:8]
        stamp = _now()
        ep = {
            "service_id": service_id,
            "name": body["name"],
            "description": body.get("description"),
            "user_id": USER_ID,
            "status": "initializing",
            "status_info": None,
            "resource_metadata": {
                "resource_display_name": f["display_name"],
                "scale_type": res["scale_type"],
                "flavor_id": f["flavor_id"],
                "target_instance_number": res["target_instance_number"],
                "scale_policy": None,
                "VRAM": f["vram"],
                "image_size": "12GB",
            },
            "billing_metadata": {
                "payment_type": body["payment_type"],
                "usd_price_unit": billing(f)["usd_price_unit"],
                "cny_price_unit": billing(f)["cny_price_unit"],
            },
            "endpoint_metadata": {"inference_url": INFERENCE_URL.format(service_id=service_id)},
            "deploy_metadata": {
                "image_url": dep["image_url"],
                "command": dep.get("command"),
                "port": dep["port"],
                "gpu_num": dep["gpu_num"],
            },
            "service_type": "normal",
            "created_at": stamp,
            "updated_at": stamp,
            "deleted_at": None,
            "is_deleted": False,
            "payment_type": body["payment_type"],
            "_since": sb.clock(),
        }
        store("endpoints")[service_id] = ep
        return JSONResponse(endpoint_view(ep))

    async def endpoint(request: Request) -> Response:
        if denied := authorized(request):
            return denied
        service_id = request.path_params["service_id"]
        ep = store("endpoints").get(service_id)
        if ep is None:
            return error(404, f"inference service {service_id} not found", request.url.path)
        if request.method == "GET":
            return JSONResponse(endpoint_view(ep))
        if request.method == "DELETE":
            del store("endpoints")[service_id]
            return Response(status_code=200)
        body, bad = await _json(request)
        if bad:
            return bad
        if problem := _body_errors(body, {"resource_metadata": (dict, True, ())}, ["body"]):
            return problem
        target = body["resource_metadata"].get("target_instance_number")
        loc = ["body", "resource_metadata", "target_instance_number"]
        if isinstance(target, str) and target.strip().isdigit():
            target = int(target)  # the documented example sends "2"; FastAPI coerces it
        if target is None:
            return fastapi_invalid(loc, "Field required", "missing")
        if not _is_int(target):
            return fastapi_invalid(
                loc, "Input should be a valid integer, unable to parse string as an integer", "int_parsing"
            )
        if target < 1:
            return fastapi_invalid(loc, "Input should be greater than or equal to 1", "greater_than_equal")
        meta = ep["resource_metadata"]
        f = flavor(meta["flavor_id"])
        extra = target - meta["target_instance_number"]
        if f is not None and extra > 0 and flavor_view(f)["available_num"] < extra:
            return error(
                400, f"not enough {meta['resource_display_name']} resources available", request.url.path
            )
        meta["target_instance_number"] = target
        ep["status"], ep["_since"], ep["updated_at"] = "initializing", sb.clock(), _now()
        return JSONResponse(endpoint_view(ep))

    # ---- rent GPU: machines -------------------------------------------------------------------
    def used_gpus(node_name: str) -> int:
        return sum(
            c["gpu"]
            for c in store("containers").values()
            if c["node_name"] == node_name and container_view(c)["status"] != STOPPED
        )

    def machine_view(m: dict[str, Any], currency: str) -> dict[str, Any]:
        free = m["gpus"] - used_gpus(m["node_name"])
        rate = CURRENCY_PER_USD[currency] * sb.price_factor(PROVIDER, m["gpu_name"])
        return {
            "on_demand": "true",
            "labels": ["sandbox", m["region"].lower()],
            "node_name": m["node_name"],
            "cluster": m["cluster"],
            "gpu_name": m["gpu_name"],
            "gpu_count": free,
            "gpu_memory": m["gpu_memory"],
            "cpu_name": m["cpu_name"],
            "cpu_count": m["cpu_per_gpu"] * m["gpus"],
            "cpu_per_gpu": m["cpu_per_gpu"],
            "memory_per_gpu": m["memory_per_gpu"],
            "memory_total": m["memory_per_gpu"] * m["gpus"],
            "disk_per_gpu": m["disk_per_gpu"],
            "disk_total": m["disk_per_gpu"] * m["gpus"],
            "region": m["region"],
            "network_upload_speed": 1000,
            "network_download_speed": 1000,
            "up_time": 2592000,
            "online_rate": 99,
            "price": f"{m['usd'] * rate:.4g}",
            "original_price": f"{m['original'] * rate:.4g}",
            "gpu_id": m["gpu_id"],
            "organization": "NetMind sandbox",
            "driver_version": "550.54.15",
            "cuda_version": "12.4",
            "nvlink_status": m["nvlink_status"],
        }

    async def machines(request: Request) -> Response:
        if denied := authorized(request):
            return denied
        q = request.query_params
        currency = (q.get("currency") or "USD").upper()
        if currency not in CURRENCY_PER_USD:
            return fastapi_invalid(["query", "currency"], "Input should be 'USD', 'CNY' or 'NMT'", "enum")
        names = ("gpu", "min_memory", "max_memory", "min_disk", "max_disk", "min_price", "max_price")
        ints, bad = _query_ints(request, names)
        if bad:
            return bad
        wanted = {n.strip() for n in (q.get("gpu_names") or "").split(",") if n.strip()}
        out = []
        for m in MACHINES:
            view = machine_view(m, currency)
            price = float(view["price"])
            if view["gpu_count"] < ints.get("gpu", 1):
                continue
            if q.get("region") and view["region"] != q["region"].upper():
                continue
            if wanted and view["gpu_name"] not in wanted:
                continue
            if not ints.get("min_memory", 0) <= view["gpu_memory"] <= ints.get("max_memory", 10**9):
                continue
            if not ints.get("min_disk", 0) <= view["disk_total"] <= ints.get("max_disk", 10**9):
                continue
            if not ints.get("min_price", 0) <= price <= ints.get("max_price", 10**9):
                continue
            out.append(view)
        return JSONResponse(out)

    # ---- rent GPU: auths ----------------------------------------------------------------------
    def page(items: list[dict[str, Any]], marker: int | None, limit: int) -> list[dict[str, Any]]:
        ordered = sorted(items, key=lambda i: i["id"])
        return [i for i in ordered if marker is None or i["id"] > marker][:limit]

    async def auths(request: Request) -> Response:
        if denied := authorized(request):
            return denied
        if request.method == "GET":
            ints, bad = _query_ints(request, ("marker", "limit"))
            if bad:
                return bad
            return JSONResponse(
                page(list(store("auths").values()), ints.get("marker"), ints.get("limit", 10))
            )
        body, bad = await _json(request)
        if bad:
            return bad
        if problem := _body_errors(body, AUTH_BODY, ["body"]):
            return problem
        auth = {"id": next_id("auth", 0), "value": body["value"], "created_at": _now()}
        store("auths")[auth["id"]] = auth
        return JSONResponse(auth)

    async def auth(request: Request) -> Response:
        if denied := authorized(request):
            return denied
        auth_id, bad = _path_int(request, "auth_id")
        if bad:
            return bad
        found = store("auths").get(auth_id)
        if found is None:
            return error(404, f"auth {auth_id} not found", request.url.path)
        return JSONResponse(found)

    # ---- rent GPU: images ---------------------------------------------------------------------
    def image_store() -> dict[int, dict[str, Any]]:
        images = store("images")
        if not images:
            for n, seed in enumerate(OFFICIAL_IMAGES, start=1):
                images[n] = {
                    **seed,
                    "docker_username": None,
                    "docker_passwd": None,
                    "docker_registry": "https://index.docker.io/v1/",
                    "public_port": "22",
                    "onstart": None,
                    "options": None,
                    "image_type": 0,
                    "id": n,
                    "created_at": "2025-01-06T08:00:00.000Z",
                }
        return images

    async def images(request: Request) -> Response:
        if denied := authorized(request):
            return denied
        if request.method == "GET":
            ints, bad = _query_ints(request, ("image_type", "limit"))
            if bad:
                return bad
            image_type = ints.get("image_type", 0)
            if image_type not in IMAGE_TYPES:
                return fastapi_invalid(["query", "image_type"], "Input should be 0, 1 or 2", "enum")
            raw_marker = request.query_params.get("marker")
            marker = int(raw_marker) if raw_marker and raw_marker.isdigit() else None
            chosen = [i for i in image_store().values() if i["image_type"] == image_type]
            return JSONResponse(page(chosen, marker, ints.get("limit", 10)))
        body, bad = await _json(request)
        if bad:
            return bad
        if problem := _body_errors(body, IMAGE_BODY, ["body"]):
            return problem
        image = {key: body.get(key) for key in IMAGE_BODY}
        image["docker_registry"] = image["docker_registry"] or "https://index.docker.io/v1/"
        image.update({"image_type": CUSTOM_IMAGE, "id": next_id("image", 100), "created_at": _now()})
        image_store()[image["id"]] = image
        return JSONResponse(image)

    async def image(request: Request) -> Response:
        if denied := authorized(request):
            return denied
        image_id, bad = _path_int(request, "image_id")
        if bad:
            return bad
        found = image_store().get(image_id)
        if found is None:
            return error(404, f"image {image_id} not found", request.url.path)
        return JSONResponse(found)

    # ---- rent GPU: containers -----------------------------------------------------------------
    def container_view(c: dict[str, Any]) -> dict[str, Any]:
        if c["status"] in NEXT_STATUS and sb.elapsed(c["_since"]) >= sb.ready_after:
            c["status"], c["_since"] = NEXT_STATUS[c["status"]], sb.clock()
        out = {k: v for k, v in c.items() if not k.startswith("_")}
        running = c["status"] == RUNNING
        out["ssh"] = f"ssh -p {c['_port']} root@{c['node_name']}.sandbox.netmind.local" if running else ""
        return out

    def find_container(request: Request) -> tuple[dict[str, Any] | None, Response | None]:
        container_id, bad = _path_int(request, "container_id")
        if bad:
            return None, bad
        found = store("containers").get(container_id)
        if found is None:
            return None, error(404, f"container {container_id} not found", request.url.path)
        return found, None

    async def containers(request: Request) -> Response:
        if denied := authorized(request):
            return denied
        if request.method == "GET":
            ints, bad = _query_ints(request, ("marker", "limit"))
            if bad:
                return bad
            views = [container_view(c) for c in store("containers").values()]
            return JSONResponse(page(views, ints.get("marker"), ints.get("limit", 10)))
        body, bad = await _json(request)
        if bad:
            return bad
        if problem := _body_errors(body, CONTAINER_BODY, ["body"]):
            return problem
        machine = next((m for m in MACHINES if m["node_name"] == body["node_name"]), None)
        if machine is None:
            return error(404, f"node {body['node_name']} not found", request.url.path)
        if body["auth_id"] not in store("auths"):
            return error(404, f"auth {body['auth_id']} not found", request.url.path)
        if body["image_template_id"] not in image_store():
            return error(404, f"image template {body['image_template_id']} not found", request.url.path)
        if machine["gpus"] - used_gpus(machine["node_name"]) < body["gpu"]:
            return error(400, f"not enough free GPUs on {machine['node_name']}", request.url.path)
        container_id = next_id("container", 1000)
        c = {
            "name": body["name"],
            "auth_id": body["auth_id"],
            "gpu": body["gpu"],
            "node_name": machine["node_name"],
            "image_template_id": body["image_template_id"],
            "enable_vscode": False,
            "enable_jupyter": False,
            "cpu": machine["cpu_per_gpu"] * body["gpu"],
            "disk_size": 200,
            "memory": machine["memory_per_gpu"] * body["gpu"],
            "gpu_name": machine["gpu_id"],
            "id": container_id,
            "ssh": "",
            "status": CREATING,
            "exposed_service": "",
            "vscode_service": "",
            "jupyter_service": "",
            "created_at": _now(),
            "_since": sb.clock(),
            "_port": 30000 + container_id % 10000,
        }
        store("containers")[container_id] = c
        return JSONResponse(container_view(c))

    async def container(request: Request) -> Response:
        if denied := authorized(request):
            return denied
        c, bad = find_container(request)
        if bad or c is None:
            return bad or error(404, "container not found", request.url.path)
        view = container_view(c)
        if request.method == "DELETE":
            del store("containers")[c["id"]]
        return JSONResponse(view)

    async def stop(request: Request) -> Response:
        if denied := authorized(request):
            return denied
        c, bad = find_container(request)
        if bad or c is None:
            return bad or error(404, "container not found", request.url.path)
        if container_view(c)["status"] in (STOPPING, STOPPED):
            return error(400, f"container {c['id']} is already stopped", request.url.path)
        c["status"], c["_since"] = STOPPING, sb.clock()
        return JSONResponse(container_view(c))

    async def restart(request: Request) -> Response:
        if denied := authorized(request):
            return denied
        c, bad = find_container(request)
        if bad or c is None:
            return bad or error(404, "container not found", request.url.path)
        machine = next(m for m in MACHINES if m["node_name"] == c["node_name"])
        held = c["gpu"] if container_view(c)["status"] != STOPPED else 0
        if machine["gpus"] - used_gpus(c["node_name"]) + held < c["gpu"]:
            return error(400, f"not enough free GPUs on {c['node_name']} to restart", request.url.path)
        c["status"], c["_since"] = CREATING, sb.clock()
        return JSONResponse(container_view(c))

    return [
        Route("/v1/inference-service/flavor", flavors, methods=["GET"]),
        Route("/v1/inference-service", create_endpoint, methods=["POST"]),
        Route("/v1/inference-service/{service_id}", endpoint, methods=["GET", "PUT", "DELETE"]),
        Route("/v1/rentgpu/machines", machines, methods=["GET"]),
        Route("/v1/rentgpu/auths/", auths, methods=["GET", "POST"]),
        Route("/v1/rentgpu/auths/{auth_id}", auth, methods=["GET"]),
        Route("/v1/rentgpu/images/", images, methods=["GET", "POST"]),
        Route("/v1/rentgpu/images/{image_id}", image, methods=["GET"]),
        Route("/v1/rentgpu/containers/", containers, methods=["GET", "POST"]),
        Route("/v1/rentgpu/containers/{container_id}", container, methods=["GET", "DELETE"]),
        Route("/v1/rentgpu/containers/{container_id}/stop", stop, methods=["POST"]),
        Route("/v1/rentgpu/containers/{container_id}/restart", restart, methods=["POST"]),
    ]
