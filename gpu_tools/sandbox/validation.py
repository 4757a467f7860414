"""FastAPI-shaped request checks for the sandbox: a route answers a bad request as a FastAPI
service would, `422 {"detail": [{"loc", "msg", "type"}]}` with pydantic v2's wording (NetMind's
documented 422 is this shape)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from gpu_tools.sandbox.state import fastapi_invalid

Check = Callable[[Any], str | None]


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def field_error(loc: list[Any], value: Any, typ: type, checks: tuple[Check, ...] = ()) -> Response | None:
    """Pydantic-v2-worded errors for one field of a request body."""
    if typ is int and not is_int(value):
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


def body_errors(
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
        if problem := field_error([*prefix, key], body[key], typ, checks):
            return problem
    return None


def length(lo: int, hi: int) -> Check:
    def check(value: str) -> str | None:
        if len(value) < lo:
            return f"string_too_short:String should have at least {lo} characters"
        if len(value) > hi:
            return f"string_too_long:String should have at most {hi} characters"
        return None

    return check


def between(lo: int, hi: int | None = None) -> Check:
    def check(value: int) -> str | None:
        if value < lo:
            return f"greater_than_equal:Input should be greater than or equal to {lo}"
        if hi is not None and value > hi:
            return f"less_than_equal:Input should be less than or equal to {hi}"
        return None

    return check


def one_of(values: tuple[int, ...]) -> Check:
    def check(value: int) -> str | None:
        if value not in values:
            return "enum:Input should be " + ", ".join(map(str, values[:-1])) + f" or {values[-1]}"
        return None

    return check


def query_ints(request: Request, names: tuple[str, ...]) -> tuple[dict[str, int], Response | None]:
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


def path_int(request: Request, name: str) -> tuple[int, Response | None]:
    raw = request.path_params[name]
    if not raw.isdigit():
        return 0, fastapi_invalid(
            ["path", name],
            "Input should be a valid integer, unable to parse string as an integer",
            "int_parsing",
        )
    return int(raw), None


async def json_body(request: Request) -> tuple[Any, Response | None]:
    try:
        return await request.json(), None
    except ValueError:
        return None, fastapi_invalid(["body"], "JSON decode error", "json_invalid")
