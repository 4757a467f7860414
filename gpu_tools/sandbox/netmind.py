"""Sandbox of NetMind's dedicated-endpoints and Rent GPU APIs (same paths, bearer auth, JSON shapes).

Endpoints move initializing -> available after `ready_after` seconds, and back through
initializing when scaled (as the documented update example answers). Containers move through
integer statuses; NetMind does not publish what its integers mean, so the values here are the
sandbox's own: 0 creating -> 1 running, stop: 2 stopping -> 3 stopped, restart: 0 -> 1. A machine
lists only its GPUs that no running container holds. Invalid bodies, queries and path ids answer
FastAPI's 422 `{"detail": [{"loc", "msg", "type"}]}`; other errors `{"detail": "..."}`.
"""

from __future__ import annotations

from datetime import UTC
from functools import partial
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gpu_tools.sandbox.netmind_catalog import FLAVOR_STAMP, FLAVORS, MACHINES, OFFICIAL_IMAGES
from gpu_tools.sandbox.state import Sandbox, bearer_token, fastapi_error, fastapi_invalid
from gpu_tools.sandbox.validation import (
    Check,
    between,
    body_errors,
    is_int,
    json_body,
    length,
    one_of,
    path_int,
    query_ints,
)

PROVIDER = "netmind"
INFERENCE_URL = "https://api.deeptrin.com/inference-api/v1/inference_service/{service_id}"
USER_ID = "sandbox-user-0001"

# The sandbox's conversion of its USD prices for the `currency` query.
CURRENCY_PER_USD = {"USD": 1.0, "CNY": 7.2, "NMT": 0.5}
PRICED_GPUS = sorted({f["display_name"] for f in FLAVORS} | {m["gpu_name"] for m in MACHINES})
IMAGE_TYPES = (0, 1, 2)  # the sandbox's: 0 official (the documented default), 1 public, 2 custom
CUSTOM_IMAGE = 2  # the documented create-image example answers image_type 2
PAYMENT_TYPES = (0, 1, 2)

# Container statuses (the sandbox's own integers; see the module docstring).
CREATING, RUNNING, STOPPING, STOPPED = 0, 1, 2, 3
NEXT_STATUS = {CREATING: RUNNING, STOPPING: STOPPED}
ENDPOINT_NEXT = {"initializing": "available"}

error = fastapi_error


def _now(sb: Sandbox) -> str:
    return sb.wall().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


ENDPOINT_BODY: dict[str, tuple[type, bool, tuple[Check, ...]]] = {
    "name": (str, True, (length(1, 128),)),
    "description": (str, False, ()),
    "payment_type": (str, True, ()),
    "resource_metadata": (dict, True, ()),
    "deploy_metadata": (dict, True, ()),
}
RESOURCE_META: dict[str, tuple[type, bool, tuple[Check, ...]]] = {
    "flavor_id": (str, True, ()),
    "scale_type": (str, True, ()),
    "target_instance_number": (int, True, (between(1, 64),)),
}
DEPLOY_META: dict[str, tuple[type, bool, tuple[Check, ...]]] = {
    "image_url": (str, True, (length(1, 512),)),
    "command": (str, False, ()),
    "port": (int, True, (between(1, 65535),)),
    "gpu_num": (int, True, (between(0, 8),)),
}
AUTH_BODY: dict[str, tuple[type, bool, tuple[Check, ...]]] = {"value": (str, True, (length(8, 32),))}
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
    "name": (str, True, (length(1, 128),)),
    "auth_id": (int, True, ()),
    "gpu": (int, True, (between(1, 12),)),
    "node_name": (str, True, ()),
    "image_template_id": (int, True, ()),
    "payment_type": (int, True, (one_of(PAYMENT_TYPES),)),
}


def store(sb: Sandbox, name: str) -> dict[Any, Any]:
    return sb.store(f"netmind.{name}")


def next_id(sb: Sandbox, kind: str, start: int) -> int:
    counters = store(sb, "counters")
    counters[kind] = counters.get(kind, start) + 1
    return counters[kind]


def authorized(sb: Sandbox, request: Request) -> Response | None:
    token = bearer_token(request)
    if token is None:
        return error(401, "Not authenticated", request.url.path)
    if token != sb.api_key:
        return error(401, "Invalid token", request.url.path)
    return None


# ---- dedicated endpoints ------------------------------------------------------------------
def flavor(flavor_id: str) -> dict[str, Any] | None:
    return next((f for f in FLAVORS if f["flavor_id"] == flavor_id), None)


def billing(sb: Sandbox, f: dict[str, Any]) -> dict[str, Any]:
    """The flavor's prices, moved by POST /_sandbox/prices."""
    factor = sb.price_factor(PROVIDER, f["display_name"])
    return {k: round(v * factor, 6) for k, v in f["billing"].items()}


def flavor_view(sb: Sandbox, f: dict[str, Any]) -> dict[str, Any]:
    busy = sum(
        e["resource_metadata"]["target_instance_number"]
        for e in store(sb, "endpoints").values()
        if e["resource_metadata"]["flavor_id"] == f["flavor_id"]
    )
    out = {k: v for k, v in f.items() if k != "vram"}
    out["billing"] = billing(sb, f)
    return {**out, **FLAVOR_STAMP, "available_num": max(f["available_num"] - busy, 0)}


def endpoint_view(sb: Sandbox, ep: dict[str, Any]) -> dict[str, Any]:
    if ep["status"] in ENDPOINT_NEXT and sb.elapsed(ep["_since"]) >= sb.ready_after:
        ep["status"], ep["_since"], ep["updated_at"] = ENDPOINT_NEXT[ep["status"]], sb.clock(), _now(sb)
    return {k: v for k, v in ep.items() if not k.startswith("_")}


async def flavors(sb: Sandbox, request: Request) -> Response:
    if denied := authorized(sb, request):
        return denied
    return JSONResponse({"flavor_list": [flavor_view(sb, f) for f in FLAVORS]})


async def create_endpoint(sb: Sandbox, request: Request) -> Response:
    if denied := authorized(sb, request):
        return denied
    body, bad = await json_body(request)
    if bad:
        return bad
    problem = (
        body_errors(body, ENDPOINT_BODY, ["body"])
        or body_errors(body["resource_metadata"], RESOURCE_META, ["body", "resource_metadata"])
        or body_errors(body["deploy_metadata"], DEPLOY_META, ["body", "deploy_metadata"])
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
    if flavor_view(sb, f)["available_num"] < res["target_instance_number"]:
        return error(400, f"not enough {f['display_name']} resources available", request.url.path)
    service_id = sb.new_id() + sb.new_id()[:8]
    stamp = _now(sb)
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
            "usd_price_unit": billing(sb, f)["usd_price_unit"],
            "cny_price_unit": billing(sb, f)["cny_price_unit"],
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
    store(sb, "endpoints")[service_id] = ep
    return JSONResponse(endpoint_view(sb, ep))


async def endpoint(sb: Sandbox, request: Request) -> Response:
    if denied := authorized(sb, request):
        return denied
    service_id = request.path_params["service_id"]
    ep = store(sb, "endpoints").get(service_id)
    if ep is None:
        return error(404, f"inference service {service_id} not found", request.url.path)
    if request.method == "GET":
        return JSONResponse(endpoint_view(sb, ep))
    if request.method == "DELETE":
        del store(sb, "endpoints")[service_id]
        return Response(status_code=200)
    body, bad = await json_body(request)
    if bad:
        return bad
    if problem := body_errors(body, {"resource_metadata": (dict, True, ())}, ["body"]):
        return problem
    target = body["resource_metadata"].get("target_instance_number")
    loc = ["body", "resource_metadata", "target_instance_number"]
    if isinstance(target, str) and target.strip().isdigit():
        target = int(target)  # the documented example sends "2"; FastAPI coerces it
    if target is None:
        return fastapi_invalid(loc, "Field required", "missing")
    if not is_int(target):
        return fastapi_invalid(
            loc, "Input should be a valid integer, unable to parse string as an integer", "int_parsing"
        )
    if target < 1:
        return fastapi_invalid(loc, "Input should be greater than or equal to 1", "greater_than_equal")
    meta = ep["resource_metadata"]
    f = flavor(meta["flavor_id"])
    extra = target - meta["target_instance_number"]
    if f is not None and extra > 0 and flavor_view(sb, f)["available_num"] < extra:
        return error(400, f"not enough {meta['resource_display_name']} resources available", request.url.path)
    meta["target_instance_number"] = target
    ep["status"], ep["_since"], ep["updated_at"] = "initializing", sb.clock(), _now(sb)
    return JSONResponse(endpoint_view(sb, ep))


# ---- rent GPU: machines -------------------------------------------------------------------
def used_gpus(sb: Sandbox, node_name: str) -> int:
    return sum(
        c["gpu"]
        for c in store(sb, "containers").values()
        if c["node_name"] == node_name and container_view(sb, c)["status"] != STOPPED
    )


def machine_view(sb: Sandbox, m: dict[str, Any], currency: str) -> dict[str, Any]:
    free = m["gpus"] - used_gpus(sb, m["node_name"])
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


async def machines(sb: Sandbox, request: Request) -> Response:
    if denied := authorized(sb, request):
        return denied
    q = request.query_params
    currency = (q.get("currency") or "USD").upper()
    if currency not in CURRENCY_PER_USD:
        return fastapi_invalid(["query", "currency"], "Input should be 'USD', 'CNY' or 'NMT'", "enum")
    names = ("gpu", "min_memory", "max_memory", "min_disk", "max_disk", "min_price", "max_price")
    ints, bad = query_ints(request, names)
    if bad:
        return bad
    wanted = {n.strip() for n in (q.get("gpu_names") or "").split(",") if n.strip()}
    out = []
    for m in MACHINES:
        view = machine_view(sb, m, currency)
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


async def auths(sb: Sandbox, request: Request) -> Response:
    if denied := authorized(sb, request):
        return denied
    if request.method == "GET":
        ints, bad = query_ints(request, ("marker", "limit"))
        if bad:
            return bad
        return JSONResponse(
            page(list(store(sb, "auths").values()), ints.get("marker"), ints.get("limit", 10))
        )
    body, bad = await json_body(request)
    if bad:
        return bad
    if problem := body_errors(body, AUTH_BODY, ["body"]):
        return problem
    auth = {"id": next_id(sb, "auth", 0), "value": body["value"], "created_at": _now(sb)}
    store(sb, "auths")[auth["id"]] = auth
    return JSONResponse(auth)


async def auth(sb: Sandbox, request: Request) -> Response:
    if denied := authorized(sb, request):
        return denied
    auth_id, bad = path_int(request, "auth_id")
    if bad:
        return bad
    found = store(sb, "auths").get(auth_id)
    if found is None:
        return error(404, f"auth {auth_id} not found", request.url.path)
    return JSONResponse(found)


# ---- rent GPU: images ---------------------------------------------------------------------
def image_store(sb: Sandbox) -> dict[int, dict[str, Any]]:
    images = store(sb, "images")
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


async def images(sb: Sandbox, request: Request) -> Response:
    if denied := authorized(sb, request):
        return denied
    if request.method == "GET":
        ints, bad = query_ints(request, ("image_type", "limit"))
        if bad:
            return bad
        image_type = ints.get("image_type", 0)
        if image_type not in IMAGE_TYPES:
            return fastapi_invalid(["query", "image_type"], "Input should be 0, 1 or 2", "enum")
        raw_marker = request.query_params.get("marker")
        marker = int(raw_marker) if raw_marker and raw_marker.isdigit() else None
        chosen = [i for i in image_store(sb).values() if i["image_type"] == image_type]
        return JSONResponse(page(chosen, marker, ints.get("limit", 10)))
    body, bad = await json_body(request)
    if bad:
        return bad
    if problem := body_errors(body, IMAGE_BODY, ["body"]):
        return problem
    image = {key: body.get(key) for key in IMAGE_BODY}
    image["docker_registry"] = image["docker_registry"] or "https://index.docker.io/v1/"
    image.update({"image_type": CUSTOM_IMAGE, "id": next_id(sb, "image", 100), "created_at": _now(sb)})
    image_store(sb)[image["id"]] = image
    return JSONResponse(image)


async def image(sb: Sandbox, request: Request) -> Response:
    if denied := authorized(sb, request):
        return denied
    image_id, bad = path_int(request, "image_id")
    if bad:
        return bad
    found = image_store(sb).get(image_id)
    if found is None:
        return error(404, f"image {image_id} not found", request.url.path)
    return JSONResponse(found)


# ---- rent GPU: containers -----------------------------------------------------------------
def container_view(sb: Sandbox, c: dict[str, Any]) -> dict[str, Any]:
    if c["status"] in NEXT_STATUS and sb.elapsed(c["_since"]) >= sb.ready_after:
        c["status"], c["_since"] = NEXT_STATUS[c["status"]], sb.clock()
    out = {k: v for k, v in c.items() if not k.startswith("_")}
    running = c["status"] == RUNNING
    out["ssh"] = f"ssh -p {c['_port']} root@{c['node_name']}.sandbox.netmind.local" if running else ""
    return out


def find_container(sb: Sandbox, request: Request) -> tuple[dict[str, Any] | None, Response | None]:
    container_id, bad = path_int(request, "container_id")
    if bad:
        return None, bad
    found = store(sb, "containers").get(container_id)
    if found is None:
        return None, error(404, f"container {container_id} not found", request.url.path)
    return found, None


async def containers(sb: Sandbox, request: Request) -> Response:
    if denied := authorized(sb, request):
        return denied
    if request.method == "GET":
        ints, bad = query_ints(request, ("marker", "limit"))
        if bad:
            return bad
        views = [container_view(sb, c) for c in store(sb, "containers").values()]
        return JSONResponse(page(views, ints.get("marker"), ints.get("limit", 10)))
    body, bad = await json_body(request)
    if bad:
        return bad
    if problem := body_errors(body, CONTAINER_BODY, ["body"]):
        return problem
    machine = next((m for m in MACHINES if m["node_name"] == body["node_name"]), None)
    if machine is None:
        return error(404, f"node {body['node_name']} not found", request.url.path)
    if body["auth_id"] not in store(sb, "auths"):
        return error(404, f"auth {body['auth_id']} not found", request.url.path)
    if body["image_template_id"] not in image_store(sb):
        return error(404, f"image template {body['image_template_id']} not found", request.url.path)
    if machine["gpus"] - used_gpus(sb, machine["node_name"]) < body["gpu"]:
        return error(400, f"not enough free GPUs on {machine['node_name']}", request.url.path)
    container_id = next_id(sb, "container", 1000)
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
        "created_at": _now(sb),
        "_since": sb.clock(),
        "_port": 30000 + container_id % 10000,
    }
    store(sb, "containers")[container_id] = c
    return JSONResponse(container_view(sb, c))


async def container(sb: Sandbox, request: Request) -> Response:
    if denied := authorized(sb, request):
        return denied
    c, bad = find_container(sb, request)
    if bad or c is None:
        return bad or error(404, "container not found", request.url.path)
    view = container_view(sb, c)
    if request.method == "DELETE":
        del store(sb, "containers")[c["id"]]
    return JSONResponse(view)


async def stop(sb: Sandbox, request: Request) -> Response:
    if denied := authorized(sb, request):
        return denied
    c, bad = find_container(sb, request)
    if bad or c is None:
        return bad or error(404, "container not found", request.url.path)
    if container_view(sb, c)["status"] in (STOPPING, STOPPED):
        return error(400, f"container {c['id']} is already stopped", request.url.path)
    c["status"], c["_since"] = STOPPING, sb.clock()
    return JSONResponse(container_view(sb, c))


async def restart(sb: Sandbox, request: Request) -> Response:
    if denied := authorized(sb, request):
        return denied
    c, bad = find_container(sb, request)
    if bad or c is None:
        return bad or error(404, "container not found", request.url.path)
    machine = next(m for m in MACHINES if m["node_name"] == c["node_name"])
    held = c["gpu"] if container_view(sb, c)["status"] != STOPPED else 0
    if machine["gpus"] - used_gpus(sb, c["node_name"]) + held < c["gpu"]:
        return error(400, f"not enough free GPUs on {c['node_name']} to restart", request.url.path)
    c["status"], c["_since"] = CREATING, sb.clock()
    return JSONResponse(container_view(sb, c))


def routes(sb: Sandbox) -> list[Route]:
    return [
        Route("/v1/inference-service/flavor", partial(flavors, sb), methods=["GET"]),
        Route("/v1/inference-service", partial(create_endpoint, sb), methods=["POST"]),
        Route("/v1/inference-service/{service_id}", partial(endpoint, sb), methods=["GET", "PUT", "DELETE"]),
        Route("/v1/rentgpu/machines", partial(machines, sb), methods=["GET"]),
        Route("/v1/rentgpu/auths/", partial(auths, sb), methods=["GET", "POST"]),
        Route("/v1/rentgpu/auths/{auth_id}", partial(auth, sb), methods=["GET"]),
        Route("/v1/rentgpu/images/", partial(images, sb), methods=["GET", "POST"]),
        Route("/v1/rentgpu/images/{image_id}", partial(image, sb), methods=["GET"]),
        Route("/v1/rentgpu/containers/", partial(containers, sb), methods=["GET", "POST"]),
        Route("/v1/rentgpu/containers/{container_id}", partial(container, sb), methods=["GET", "DELETE"]),
        Route("/v1/rentgpu/containers/{container_id}/stop", partial(stop, sb), methods=["POST"]),
        Route("/v1/rentgpu/containers/{container_id}/restart", partial(restart, sb), methods=["POST"]),
    ]
