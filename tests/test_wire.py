"""One way to read a provider's answer: every provider's unreadable answer reads the same sentence,
naming the provider, the request and the field, and never quoting the value."""

from __future__ import annotations

import pytest
import respx

from gpu_tools.errors import MalformedResponse
from gpu_tools.providers.wire import Wire, field_path, parse, parse_list
from gpu_tools.settings import Settings
from gpu_tools.toolkit import Toolkit


class Item(Wire):
    id: int
    name: str | None = None


class Page(Wire):
    items: list[Item]


def test_the_error_names_provider_request_and_field_without_the_value() -> None:
    with pytest.raises(MalformedResponse) as info:
        parse(Page, {"items": [{"id": 1}, {"id": "s3cr3t-value"}]}, provider="demo", source="GET /things")
    assert str(info.value) == (
        "demo: GET /things answered unreadable JSON at items[1].id: "
        "Input should be a valid integer, unable to parse string as an integer."
    )
    assert "s3cr3t" not in str(info.value)


def test_a_list_item_is_named_by_its_index_and_a_non_list_by_its_type() -> None:
    with pytest.raises(MalformedResponse, match=r"^demo: GET /x answered unreadable JSON at \[2\]: "):
        parse_list(Item, [{"id": 1}, {"id": 2}, "?"], provider="demo", source="GET /x")
    with pytest.raises(
        MalformedResponse, match=r"^demo: GET /x answered unreadable JSON: expected a list, got dict\.$"
    ):
        parse_list(Item, {"id": 1}, provider="demo", source="GET /x")
    assert field_path(("a", 0, "b", 3)) == "a[0].b[3]"


def test_extra_fields_are_kept_and_dump_gives_the_provider_json_back() -> None:
    item = parse(Item, {"id": 1, "addedLater": True}, provider="demo", source="GET /x")
    assert item.dump() == {"id": 1, "addedLater": True}


@pytest.mark.parametrize(
    ("provider", "path", "body", "expected"),
    [
        (
            "netmind",
            "/v1/inference-service/flavor",
            {"flavor_list": [{"display_name": "x"}]},
            "netmind: GET /v1/inference-service/flavor answered unreadable JSON at flavor_list[0].flavor_id: "
            "Field required.",
        ),
        (
            "sesterce",
            "/ai-inference/instances",
            [{"id": 7}],
            "sesterce: GET /ai-inference/instances answered unreadable JSON at [0].id: "
            "Input should be a valid string.",
        ),
        (
            "nebius",
            "/v0/dedicated_endpoints",
            {"endpoints": [{"name": "no id"}]},
            "nebius: GET /v0/dedicated_endpoints answered unreadable JSON at [0].id: Field required.",
        ),
    ],
)
@pytest.mark.anyio
async def test_every_provider_reports_an_unreadable_answer_the_same_way(
    provider: str, path: str, body: object, expected: str
) -> None:
    tk = Toolkit(Settings(netmind_api_key="k1", sesterce_api_key="k2", nebius_api_key="k3"))
    base = tk.adapter(provider).base_url()
    with respx.mock(base_url=base, assert_all_called=False) as api:
        api.get(path).respond(json=body)
        with pytest.raises(MalformedResponse) as info:
            if provider == "netmind":
                await tk.adapter(provider).flavors()  # type: ignore[attr-defined]
            else:
                await tk.adapter(provider).list_resources()
    tk.close()
    assert str(info.value) == expected
