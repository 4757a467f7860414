"""What every provider's wire models share: one base, one way to read an answer, one error.

A provider answer that does not read as its documented shape becomes a `MalformedResponse` that
names the provider, the request it answered and the first field that did not read, in one
sentence (`netmind: GET /v1/rentgpu/auths/ answered unreadable JSON at [0].id: Input should be a
valid integer.`). The value itself is never quoted: it may be a secret.
"""

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from gpu_tools.errors import MalformedResponse

W = TypeVar("W", bound=BaseModel)


class Wire(BaseModel):
    """Base of every provider's wire models: the documented JSON, with the fields a provider adds
    kept (never an error), Python names or the provider's aliases accepted, built on first use."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, defer_build=True)

    def dump(self) -> dict[str, Any]:
        """The provider's JSON again: its field names, unset fields left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def field_path(loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as a JSON path: `flavor_list[0].billing`."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def unreadable(provider: str, source: str, field: str, reason: str) -> MalformedResponse:
    where = f" at {field}" if field else ""
    return MalformedResponse(
        f"{source} answered unreadable JSON{where}: {reason.rstrip('.')}.", provider=provider
    )


def parse(model: type[W], body: Any, *, provider: str, source: str, at: tuple[int | str, ...] = ()) -> W:
    """`body` read as `model`. `source` is the request it answers (`GET /v1/...`); `at` is where
    `body` sits inside that answer, so the error names the field from the answer's top."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise unreadable(provider, source, field_path(at + tuple(first["loc"])), first["msg"]) from None


def expect_list(body: Any, *, provider: str, source: str, at: tuple[int | str, ...] = ()) -> list[Any]:
    """`body` if it is a JSON array, else the same one-sentence error."""
    if not isinstance(body, list):
        raise unreadable(provider, source, field_path(at), f"expected a list, got {type(body).__name__}")
    return body


def parse_list(
    model: type[W], body: Any, *, provider: str, source: str, at: tuple[int | str, ...] = ()
) -> list[W]:
    """Each item of the JSON array `body` read as `model`."""
    items = expect_list(body, provider=provider, source=source, at=at)
    return [parse(model, item, provider=provider, source=source, at=(*at, i)) for i, item in enumerate(items)]
