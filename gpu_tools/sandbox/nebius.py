"""Sandbox of the Nebius Token Factory dedicated-endpoints API and its chat completions.

Endpoints move starting -> running after `ready_after` seconds; PATCH `enabled=false` moves them
stopping -> stopped, `true` starting -> running; scaling changes pass through updating. Chat
answers 404 until the endpoint runs, as the real service does during startup.
"""

from __future__ import annotations

from datetime import UTC
from functools import partial
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gpu_tools.sandbox.state import Sandbox, bearer_token, fastapi_error, fastapi_invalid

PROVIDER = "nebius"
PRICED_GPUS: list[str] = []  # Nebius states no prices: the nebius_gpu_usd_per_hour setting does

TEMPLATES: dict[str, Any] = {
    "templates": [
        {
            "template_name": "openai/gpt-oss-20b",
            "description": "gpt-oss 20B, OpenAI open-weight reasoning model",
            "flavors": [
                {
                    "flavor_name": "base",
                    "gpu_types": ["gpu-h100-sxm", "gpu-h200-sxm"],
                    "gpu_counts": [1],
                    "regions": ["eu-north1", "us-central1"],
                },
                {
                    "flavor_name": "fast",
                    "gpu_types": ["gpu-h200-sxm"],
                    "gpu_counts": [1, 2],
                    "regions": ["eu-north1"],
                },
            ],
        },
        {
            "template_name": "openai/gpt-oss-120b",
            "description": "gpt-oss 120B",
            "flavors": [
                {
                    "flavor_name": "base",
                    "gpu_types": ["gpu-h100-sxm", "gpu-h200-sxm"],
                    "gpu_counts": [1, 2],
                    "regions": ["eu-north1", "eu-west1"],
                }
            ],
        },
        {
            "template_name": "deepseek-ai/DeepSeek-V3.1",
            "description": "DeepSeek V3.1",
            "flavors": [
                {
                    "flavor_name": "base",
                    "gpu_types": ["gpu-h200-sxm"],
                    "gpu_counts": [8],
                    "regions": ["eu-north1"],
                }
            ],
        },
    ]
}
REQUIRED = {"name": str, "model_name": str, "flavor_name": str, "gpu_type": str, "gpu_count": int}
PHASE_AFTER = {"starting": "running", "updating": "running", "stopping": "stopped"}


error = fastapi_error


def authorized(sb: Sandbox, request: Request) -> Response | None:
    token = bearer_token(request)
    if token is None:
        return error(401, "Not authenticated", request.url.path)
    if token != sb.api_key:
        return error(401, "Invalid API key", request.url.path)
    return None


def view(sb: Sandbox, ep: dict[str, Any]) -> dict[str, Any]:
    phase = ep["_phase"]
    if phase in PHASE_AFTER and sb.elapsed(ep["_since"]) >= sb.ready_after:
        ep["_phase"], ep["_since"] = PHASE_AFTER[phase], sb.clock()
    phase = ep["_phase"]
    scaling = ep["scaling"]
    ready = (scaling["min_replicas"] or 1) if phase == "running" else 0
    out = {k: v for k, v in ep.items() if not k.startswith("_")}
    out["deployment"] = {
        "status": phase,
        "readiness": "ready" if phase == "running" else "not_ready",
        "ready_replicas": ready,
    }
    return out


def template_error(body: dict[str, Any]) -> str | None:
    for t in TEMPLATES["templates"]:
        if t["template_name"] != body["model_name"]:
            continue
        for f in t["flavors"]:
            if f["flavor_name"] != body["flavor_name"]:
                continue
            if body["gpu_type"] not in f["gpu_types"]:
                return f"gpu_type {body['gpu_type']} not supported by {t['template_name']}/{f['flavor_name']}"
            if body["gpu_count"] not in f["gpu_counts"]:
                return f"gpu_count {body['gpu_count']} not supported"
            if body["region"] not in f["regions"]:
                return f"region {body['region']} not available for this template"
            return None
        return f"flavor {body['flavor_name']} not found for template {t['template_name']}"
    return f"template {body['model_name']} not found"


async def templates(sb: Sandbox, request: Request) -> Response:
    return authorized(sb, request) or JSONResponse(TEMPLATES)


async def collection(sb: Sandbox, request: Request) -> Response:
    endpoints: dict[str, dict[str, Any]] = sb.store("nebius.endpoints")
    if denied := authorized(sb, request):
        return denied
    if request.method == "GET":
        return JSONResponse({"endpoints": [view(sb, e) for e in endpoints.values()]})
    try:
        body = await request.json()
    except ValueError:
        return fastapi_invalid(["body"], "JSON decode error", "json_invalid")
    if not isinstance(body, dict):
        return fastapi_invalid(["body"], "Input should be a valid dictionary", "dict_type")
    for key, typ in REQUIRED.items():
        if key not in body:
            return fastapi_invalid(["body", key], "Field required", "missing")
        if not isinstance(body[key], typ) or isinstance(body[key], bool):
            return fastapi_invalid(
                ["body", key], f"Input should be a valid {typ.__name__}", f"{typ.__name__}_type"
            )
    scaling = body.get("scaling")
    if not isinstance(scaling, dict) or not all(
        isinstance(scaling.get(k), int) for k in ("min_replicas", "max_replicas")
    ):
        return fastapi_invalid(
            ["body", "scaling"], "min_replicas and max_replicas are required integers", "missing"
        )
    if scaling["min_replicas"] > scaling["max_replicas"]:
        return fastapi_invalid(["body", "scaling"], "min_replicas must be <= max_replicas")
    body.setdefault("region", "eu-north1")
    if problem := template_error(body):
        return error(400, problem, request.url.path)
    ep_id = sb.new_id("dep-")
    ep = {
        "id": ep_id,
        "name": body["name"],
        "description": body.get("description"),
        "enabled": True,
        "routing_key": f"{body['model_name']}-{ep_id[-6:]}",
        "model_name": body["model_name"],
        "flavor_name": body["flavor_name"],
        "region": body["region"],
        "gpu_type": body["gpu_type"],
        "gpu_count": body["gpu_count"],
        "scaling": {"min_replicas": scaling["min_replicas"], "max_replicas": scaling["max_replicas"]},
        "created_at": sb.wall().astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "_phase": "starting",
        "_since": sb.clock(),
    }
    endpoints[ep_id] = ep
    return JSONResponse(view(sb, ep))


async def item(sb: Sandbox, request: Request) -> Response:
    endpoints: dict[str, dict[str, Any]] = sb.store("nebius.endpoints")
    if denied := authorized(sb, request):
        return denied
    ep_id = request.path_params["endpoint_id"]
    ep = endpoints.get(ep_id)
    if ep is None:
        return error(404, f"Dedicated endpoint {ep_id} not found", request.url.path)
    if request.method == "DELETE":
        del endpoints[ep_id]
        return Response(status_code=204)
    if request.method == "GET":
        return JSONResponse(view(sb, ep))
    try:
        body = await request.json()
    except ValueError:
        return fastapi_invalid(["body"], "JSON decode error", "json_invalid")
    if "region" in body and body["region"] != ep["region"]:
        return fastapi_invalid(["body", "region"], "region cannot be changed")
    view(sb, ep)  # settle the phase first
    if "scaling" in body:
        s = body["scaling"]
        merged = {
            **ep["scaling"],
            **{k: v for k, v in s.items() if k in ("min_replicas", "max_replicas")},
        }
        if merged["min_replicas"] > merged["max_replicas"]:
            return fastapi_invalid(["body", "scaling"], "min_replicas must be <= max_replicas")
        ep["scaling"] = merged
    for key in ("name", "description", "gpu_type", "gpu_count", "flavor_name"):
        if key in body:
            ep[key] = body[key]
    if "enabled" in body and bool(body["enabled"]) != ep["enabled"]:
        ep["enabled"] = bool(body["enabled"])
        ep["_phase"], ep["_since"] = ("starting" if ep["enabled"] else "stopping"), sb.clock()
    elif ep["enabled"] and any(k in body for k in ("scaling", "gpu_type", "gpu_count")):
        ep["_phase"], ep["_since"] = "updating", sb.clock()
    return JSONResponse(view(sb, ep))


async def chat(sb: Sandbox, request: Request) -> Response:
    endpoints: dict[str, dict[str, Any]] = sb.store("nebius.endpoints")
    if denied := authorized(sb, request):
        return denied
    body = await request.json()
    model = body.get("model")
    ep = next((e for e in endpoints.values() if e["routing_key"] == model), None)
    if ep is None or view(sb, ep)["deployment"]["status"] != "running":
        return error(404, f"The model `{model}` does not exist or is not ready.", request.url.path)
    question = next((m["content"] for m in reversed(body.get("messages", [])) if m.get("role") == "user"), "")
    content = f"[sandbox {ep['model_name']}] You said: {question}"
    return JSONResponse(
        {
            "id": sb.new_id("chatcmpl-"),
            "object": "chat.completion",
            "created": 1763900000,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": len(question.split()),
                "completion_tokens": len(content.split()),
                "total_tokens": len(question.split()) + len(content.split()),
            },
        }
    )


def routes(sb: Sandbox) -> list[Route]:
    return [
        Route("/v0/dedicated_endpoints/templates", partial(templates, sb), methods=["GET"]),
        Route("/v0/dedicated_endpoints", partial(collection, sb), methods=["GET", "POST"]),
        Route("/v0/dedicated_endpoints/{endpoint_id}", partial(item, sb), methods=["GET", "PATCH", "DELETE"]),
        Route("/v1/chat/completions", partial(chat, sb), methods=["POST"]),
    ]
