"""NetMind: dedicated inference endpoints and Rent GPU containers, one adapter for both products.

Dedicated endpoints (`/v1/inference-service...`): the flavors are the offers (kind `endpoint`); an
endpoint runs a container image on a flavor, is scaled by PUT `target_instance_number` and deleted.
NetMind documents no call that lists endpoints, and none that stops or starts one. So
`list_resources` reads back, one GET each, the endpoints this tool created (found in the journal,
which records every create before it is sent), and stop/start answer `Unsupported` with what to do
instead.

Rent GPU (`/v1/rentgpu/...`): the machines are the offers (kind `container`); SSH auths and image
templates are NetMind-only operations; containers are created on a machine's `node_name`, listed
with marker paging, stopped, restarted and deleted. NetMind does not publish what its integer enums
(container `status`, `payment_type`, `image_type`) mean, so they stay integers: a container's
normalized status is `unknown` and its `raw_status` is the integer, never an invented name.

Resource ids carry the product, `endpoint:<service_id>` and `container:<container_id>`, so the
unified lifecycle tools know which API to call and the two id spaces never collide.

Secrets: an auth's `value` is an SSH password and an image's `docker_passwd` a registry password;
both are masked in every result, plan and journal row unless a get is asked to reveal them.
"""

from __future__ import annotations

import asyncio
import re
import shlex
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gpu_tools.errors import InvalidInput, MalformedResponse, NotFound
from gpu_tools.gpus import canonical_gpu, gpu_memory_gb, price_order
from gpu_tools.models import (
    Listing,
    Offer,
    Plan,
    Region,
    Resource,
    Result,
    Status,
    Template,
    WireRequest,
)
from gpu_tools.operations import CreateInput, Operation, OpInput, Progress, StopInput, UpdateInput
from gpu_tools.providers.base import MASK, Provider, Truncated, mask_url_secrets
from gpu_tools.settings import Settings

if TYPE_CHECKING:
    from gpu_tools.toolkit import Toolkit

# ---- documented paths and values ---------------------------------------------------------------
SERVICE = "/v1/inference-service"
FLAVORS = "/v1/inference-service/flavor"
MACHINES = "/v1/rentgpu/machines"
AUTHS = "/v1/rentgpu/auths/"
IMAGES = "/v1/rentgpu/images/"
CONTAINERS = "/v1/rentgpu/containers/"
INFERENCE_URL = "https://api.deeptrin.com/inference-api/v1/inference_service/{service_id}"

ENDPOINT_STATUS: dict[str, Status] = {
    "initializing": "pending",
    "available": "running",
    "stopped": "stopped",
    "unavailable": "failed",
}
# The region codes the machine list documents as its enumeration.
MACHINE_REGIONS = (
    "HK SE CZ CA RO US ES BR CN JP DE AU IT RU PL VN PH TW NL RS SG AR NZ FI IN BG NO EE MY BH GB LT"
).split()
# Option flags the image `options` field documents as the only ones supported.
IMAGE_OPTIONS = ("--add-host", "-e", "-h", "-w")
# Memory of GPUs whose NetMind names do not state it (by canonical model).

PRICE_UNIT = "per GPU-hour (NetMind's docs do not state the unit; gpu-tools reads it per GPU-hour)"
STATUS_MEANING = "NetMind does not publish what container status integers mean; see raw_status"
NOT_BILLED = "registers a template or credential at NetMind; no GPU is rented by this call"
ID_FORMAT = "NetMind resource ids look like endpoint:<service_id> or container:<container_id>"
PAGE = 50  # page size when walking a whole collection
MAX_PAGES = 40  # a bound on any walk, in case a marker never advances

_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]+$")

W = TypeVar("W", bound=BaseModel)


# ---- wire models (mirror the documented JSON) ------------------------------------------------
class Wire(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True, defer_build=True)


class FlavorMeta(Wire):
    cuda: str | None = None
    region: str | None = None


class FlavorBilling(Wire):
    cny_price_unit: float | None = None
    usd_price_unit: float | None = None
    nmt_price_unit: float | None = None


class Flavor(Wire):
    flavor_id: str
    display_name: str
    cluster_id: str | None = None
    cluster_flavor_id: str | None = None
    meta_info: FlavorMeta = Field(default_factory=FlavorMeta)
    billing: FlavorBilling = Field(default_factory=FlavorBilling)
    created_at: str | None = None
    updated_at: str | None = None
    deleted_at: str | None = None
    is_deleted: bool | None = None
    available_num: int | None = None
    node_max_gpu: int | None = None


class FlavorList(Wire):
    flavor_list: list[Flavor]


class EndpointResourceMeta(Wire):
    resource_display_name: str | None = None
    scale_type: str | None = None
    flavor_id: str | None = None
    # Responses carry a number; the update example sends a string ("2"): both parse.
    target_instance_number: int | None = None
    scale_policy: Any = None
    vram: str | None = Field(None, alias="VRAM")
    image_size: str | None = None


class EndpointDeployMeta(Wire):
    image_url: str | None = None
    command: str | None = None
    port: int | None = None
    gpu_num: int | None = None


class Endpoint(Wire):
    service_id: str
    name: str | None = None
    description: str | None = None
    user_id: str | None = None
    status: str | None = None
    status_info: Any = None
    resource_metadata: EndpointResourceMeta = Field(default_factory=EndpointResourceMeta)
    billing_metadata: dict[str, Any] | None = None
    endpoint_metadata: dict[str, Any] | None = None
    deploy_metadata: EndpointDeployMeta = Field(default_factory=EndpointDeployMeta)
    service_type: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    deleted_at: str | None = None
    is_deleted: bool | None = None
    payment_type: str | None = None


class EndpointResourceBody(BaseModel):
    flavor_id: str
    scale_type: str
    target_instance_number: int


class EndpointDeployBody(BaseModel):
    image_url: str
    command: str | None = None
    port: int
    gpu_num: int


class EndpointCreateBody(BaseModel):
    name: str
    description: str | None = None
    payment_type: str
    resource_metadata: EndpointResourceBody
    deploy_metadata: EndpointDeployBody


class Machine(Wire):
    on_demand: Any = None
    labels: list[Any] = Field(default_factory=list)
    node_name: str
    cluster: str | None = None
    gpu_name: str | None = None
    gpu_count: int | None = None
    gpu_memory: float | None = None
    cpu_name: str | None = None
    cpu_count: int | None = None
    cpu_per_gpu: float | None = None
    memory_per_gpu: float | None = None
    memory_total: float | None = None
    disk_per_gpu: float | None = None
    disk_total: float | None = None
    region: str | None = None
    network_upload_speed: float | None = None
    network_download_speed: float | None = None
    up_time: float | None = None
    online_rate: float | None = None
    price: str | float | None = None
    original_price: str | float | None = None
    gpu_id: int | None = None
    organization: str | None = None
    driver_version: str | None = None
    cuda_version: str | None = None
    nvlink_status: bool | None = None


class Auth(Wire):
    id: int
    value: str | None = None
    created_at: str | None = None


class Image(Wire):
    name: str | None = None
    description: str | None = None
    image_name: str | None = None
    image_tag: str | None = None
    image_label: str | None = None
    docker_username: str | None = None
    docker_passwd: str | None = None
    docker_registry: str | None = None
    public_port: str | int | None = None
    onstart: str | None = None
    options: str | None = None
    image_type: int | None = None
    id: int
    created_at: str | None = None


class Container(Wire):
    name: str | None = None
    auth_id: int | None = None
    gpu: int | None = None
    node_name: str | None = None
    image_template_id: int | None = None
    enable_vscode: bool | None = None
    enable_jupyter: bool | None = None
    cpu: float | None = None
    disk_size: float | None = None
    memory: float | None = None
    gpu_name: int | str | None = None
    id: int
    ssh: str | None = None
    status: int | None = None
    exposed_service: str | None = None
    vscode_service: str | None = None
    jupyter_service: str | None = None
    created_at: str | None = None


# ---- results of the NetMind-only operations ---------------------------------------------------
class NetmindAuth(Result):
    """An SSH authentication (the password a container's SSH login uses)."""

    auth_id: int = Field(description="Pass as auth_id to netmind_create_container.")
    value: str | None = Field(None, description="The SSH password: *** unless reveal_secrets was true.")
    created_at: str | None = None


class NetmindAuthPage(Result):
    items: list[NetmindAuth]
    total: int = Field(description="Items on this page.")
    next_marker: int | None = Field(None, description="Pass as marker for the next page; None on the last.")


class NetmindImage(Result):
    """An image (environment template) a container can be created from."""

    image_id: int = Field(description="Pass as image_template_id to netmind_create_container.")
    name: str | None = None
    description: str | None = None
    image_name: str | None = None
    image_tag: str | None = None
    image_label: str | None = None
    image_type: int | None = Field(
        None, description="NetMind's raw integer (OFFICIAL, PUBLIC or CUSTOM; the mapping is not published)."
    )
    docker_username: str | None = None
    docker_passwd: str | None = Field(None, description="Registry password: *** unless reveal_secrets.")
    docker_registry: str | None = None
    public_port: str | int | None = None
    onstart: str | None = None
    options: str | None = None
    created_at: str | None = None
    details: dict[str, Any] = Field(default_factory=dict, description="Further fields NetMind returned.")


class NetmindImagePage(Result):
    items: list[NetmindImage]
    total: int = Field(description="Items on this page.")
    next_marker: str | None = Field(None, description="Pass as marker for the next page; None on the last.")


class NetmindContainerPage(Result):
    items: list[Resource]
    total: int = Field(description="Items on this page.")
    next_marker: int | None = Field(None, description="Pass as marker for the next page; None on the last.")


# ---- operation inputs (argument names are the documented fields, nested objects flattened) -----
class NetmindCreateEndpoint(CreateInput):
    """Create a NetMind dedicated endpoint (`resource_metadata` and `deploy_metadata` flattened)."""

    name: str = Field(description="Endpoint name.", min_length=1, max_length=200)
    description: str | None = Field(None, description="Optional description.")
    payment_type: str = Field(
        "usd", min_length=1, description="Billing currency of the endpoint; the documented value is 'usd'."
    )
    flavor_id: str = Field(
        min_length=1, description="offer_id of a list_offers entry with provider netmind, kind endpoint."
    )
    scale_type: str = Field(
        "manual", min_length=1, description="resource_metadata.scale_type; the documented value is 'manual'."
    )
    target_instance_number: int = Field(1, ge=1, description="Instances (replicas) to run.")
    image_url: str = Field(min_length=1, description="Container image to serve, e.g. python:3.10-slim.")
    command: str | None = Field(None, description="Shell command the container runs at start.")
    port: int = Field(ge=1, le=65535, description="Port the container listens on, e.g. 8080.")
    gpu_num: int = Field(
        1, ge=0, description="GPUs per instance (deploy_metadata.gpu_num), at most the flavor's node_max_gpu."
    )


class NetmindListMachines(OpInput):
    """Every filter `GET /v1/rentgpu/machines` documents; unset filters are not sent."""

    currency: Literal["USD", "CNY", "NMT"] | None = Field(
        None, description="Currency of the prices (NetMind's default: USD)."
    )
    region: str | None = Field(None, description="Region code, e.g. US, HK, DE, JP, SG, GB.")
    gpu: int | None = Field(
        None, ge=1, le=12, description="GPU count wanted (documented as an integer, default 1)."
    )
    gpu_names: str | None = Field(
        None,
        description="Comma-separated NetMind GPU type names, e.g. NVIDIA_H100_SXM5_80GB,NVIDIA_GeForce_RTX_4090.",
    )
    min_memory: int | None = Field(
        None, ge=0, description="NetMind's min_memory filter, passed as given (unit not documented)."
    )
    max_memory: int | None = Field(None, ge=0, description="NetMind's max_memory filter, passed as given.")
    min_disk: int | None = Field(None, ge=0, description="NetMind's min_disk filter, passed as given.")
    max_disk: int | None = Field(None, ge=0, description="NetMind's max_disk filter, passed as given.")
    min_price: int | None = Field(None, ge=0, description="In `currency`.")
    max_price: int | None = Field(None, ge=0, description="In `currency`.")

    @model_validator(mode="after")
    def _check(self) -> NetmindListMachines:
        if self.region is not None:
            self.region = self.region.upper()
            if self.region not in MACHINE_REGIONS:
                raise ValueError(f"region must be one of {', '.join(MACHINE_REGIONS)}")
        for what in ("memory", "disk", "price"):
            lo, hi = getattr(self, f"min_{what}"), getattr(self, f"max_{what}")
            if lo is not None and hi is not None and lo > hi:
                raise ValueError(f"min_{what} is larger than max_{what}")
        return self


class NetmindCreateAuth(CreateInput):
    value: str = Field(
        min_length=8,
        max_length=32,
        description="The SSH password of your containers (8-32 characters). Masked in every output.",
    )


class NetmindListAuths(OpInput):
    marker: int | None = Field(
        None, ge=0, description="next_marker of the previous page; omit for the first."
    )
    limit: int = Field(10, ge=1, le=1000, description="Auths per page.")


class NetmindGetAuth(OpInput):
    positional: ClassVar[tuple[str, ...]] = ("auth_id",)
    auth_id: int = Field(ge=0, description="The auth id from netmind_list_auths or netmind_create_auth.")
    reveal_secrets: bool = Field(False, description="Show the SSH password instead of ***.")


class NetmindCreateImage(CreateInput):
    name: str = Field(min_length=1, description="Name of the image template.")
    description: str | None = Field(None, description="Optional description of the image.")
    image_name: str = Field(min_length=1, description="Image repository, e.g. pytorch/pytorch.")
    image_tag: str = Field(min_length=1, description="Image tag, e.g. 2.6.0 or latest.")
    image_label: str = Field(min_length=1, description="Label, e.g. pytorch, tensorflow or ubuntu.")
    docker_username: str | None = Field(None, description="Registry user, for a private image.")
    docker_passwd: str | None = Field(None, description="Registry password, for a private image. Masked.")
    docker_registry: str | None = Field(
        None, description="Registry URL for a private image (NetMind's default: https://index.docker.io/v1/)."
    )
    public_port: str | None = Field(None, description="Port to expose from the container.")
    onstart: str | None = Field(None, description="Command run when the container starts.")
    options: str | None = Field(
        None, description="docker run options; only --add-host, -e, -h and -w are supported."
    )

    @model_validator(mode="after")
    def _check(self) -> NetmindCreateImage:
        if self.docker_passwd and not self.docker_username:
            raise ValueError("docker_passwd needs docker_username")
        if self.options:
            try:
                tokens = shlex.split(self.options)
            except ValueError as exc:
                raise ValueError(f"options: {exc}") from None
            for token in tokens:
                flag = token.split("=", 1)[0]
                if token.startswith("-") and flag not in IMAGE_OPTIONS:
                    raise ValueError(f"options: {flag} is not supported (only {', '.join(IMAGE_OPTIONS)})")
        return self


class NetmindListImages(OpInput):
    image_type: int | None = Field(
        None,
        ge=0,
        description="NetMind's integer image type (OFFICIAL, PUBLIC or CUSTOM; default 0, the official "
        "images). The integer-to-name mapping is not published.",
    )
    marker: str | None = Field(None, description="next_marker of the previous page; omit for the first.")
    limit: int = Field(10, ge=1, le=1000, description="Images per page.")


class NetmindGetImage(OpInput):
    positional: ClassVar[tuple[str, ...]] = ("image_id",)
    image_id: int = Field(ge=0, description="The image id from netmind_list_images.")
    reveal_secrets: bool = Field(False, description="Show docker_passwd instead of ***.")


class NetmindCreateContainer(CreateInput):
    name: str = Field(min_length=1, max_length=200, description="Container name.")
    auth_id: int = Field(ge=0, description="SSH auth id (netmind_create_auth / netmind_list_auths).")
    gpu: int = Field(1, ge=1, le=12, description="GPUs to rent on the machine (at most 12).")
    node_name: str = Field(
        min_length=1, description="offer_id of a list_offers entry with provider netmind, kind container."
    )
    image_template_id: int = Field(ge=0, description="Image id from netmind_list_images.")
    payment_type: int = Field(
        0,
        ge=0,
        description="NetMind's integer for the balance currency (USD, NMT or CNY; the mapping is not "
        "published, the documented example uses 0).",
    )


class NetmindListContainers(OpInput):
    limit: int = Field(10, ge=1, le=1000, description="Containers per page.")
    marker: int | None = Field(
        None, ge=0, description="next_marker of the previous page; omit for the first."
    )


# ---- parsing helpers --------------------------------------------------------------------------
def _parse(model: type[W], body: Any, what: str) -> W:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        first = str(exc).splitlines()
        raise MalformedResponse(
            f"unreadable {what}: {first[1] if len(first) > 1 else first[0]}", provider="netmind"
        ) from None


def _parse_list(model: type[W], body: Any, what: str) -> list[W]:
    if not isinstance(body, list):
        raise MalformedResponse(f"expected a list of {what}, got {type(body).__name__}", provider="netmind")
    return [_parse(model, item, what) for item in body]


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


def _scrub(text: str | None) -> str | None:
    """Mask token/password query values inside service URLs (a Jupyter URL may carry a token)."""
    return mask_url_secrets(text) if text else text


# ---- the adapter ------------------------------------------------------------------------------
class NetmindProvider(Provider):
    name = "netmind"
    title = "NetMind"
    capabilities = frozenset(
        {"offers", "templates", "regions", "resources", "update", "stop", "start", "delete"}
    )
    # `value` is the password of an SSH auth (masking every NetMind `value` also covers env-style
    # name/value pairs); `docker_passwd` is a base secret key too, listed for the reader.
    secret_keys = frozenset({"value", "docker_passwd"})

    @classmethod
    def is_configured(cls, settings: Settings) -> bool:
        return settings.netmind_api_key is not None

    def base_url(self) -> str:
        return self.settings.netmind_base_url

    def auth_headers(self) -> dict[str, str]:
        assert self.settings.netmind_api_key is not None
        return {"Authorization": f"Bearer {self.settings.netmind_api_key.get_secret_value()}"}

    def config_hint(self) -> str:
        return "Set NETMIND_API_KEY (or netmind_api_key in config.toml), or use the sandbox."

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
                    details[key] = _scrub(details[key])
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
            url=url if reveal_secrets else _scrub(url),
            created_at=c.created_at,
            details=details,
        )

    def auth_view(self, a: Auth, *, reveal_secrets: bool = False) -> NetmindAuth:
        value = a.value if reveal_secrets or not a.value else MASK
        return NetmindAuth(auth_id=a.id, value=value, created_at=a.created_at)

    def image_view(self, i: Image, *, reveal_secrets: bool = False) -> NetmindImage:
        known = set(NetmindImage.model_fields) | {"id"}
        extra = {k: v for k, v in i.model_dump(mode="json", exclude_none=True).items() if k not in known}
        return NetmindImage(
            image_id=i.id,
            name=i.name,
            description=i.description,
            image_name=i.image_name,
            image_tag=i.image_tag,
            image_label=i.image_label,
            image_type=i.image_type,
            docker_username=i.docker_username,
            docker_passwd=i.docker_passwd if reveal_secrets or not i.docker_passwd else MASK,
            docker_registry=i.docker_registry,
            public_port=i.public_port,
            onstart=i.onstart,
            options=i.options,
            created_at=i.created_at,
            details=extra if reveal_secrets else self.mask(extra),
        )

    # ---- reads: dedicated endpoints ---------------------------------------------------------
    async def flavors(self) -> list[Flavor]:
        body = await self.http.request("GET", FLAVORS)
        return [f for f in _parse(FlavorList, body, "flavor list").flavor_list if not f.is_deleted]

    async def find_flavor(self, flavor_id: str) -> Flavor | None:
        return next((f for f in await self.flavors() if f.flavor_id == flavor_id), None)

    async def endpoint(self, service_id: str) -> Endpoint:
        body = await self.http.request("GET", f"{SERVICE}/{service_id}")
        return _parse(Endpoint, body, "endpoint")

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
        return _parse_list(Machine, await self.http.request("GET", MACHINES, params=params), "machines")

    async def machine_offers(self, data: NetmindListMachines) -> list[Offer]:
        params = data.model_dump(exclude_none=True)
        return [self.machine_offer(m, data.currency or "USD") for m in await self.machines(params)]

    async def auths(self, *, limit: int, marker: int | None = None) -> list[Auth]:
        body = await self.http.request("GET", AUTHS, params={"marker": marker, "limit": limit})
        return _parse_list(Auth, body, "auths")

    async def auth(self, auth_id: int) -> Auth:
        return _parse(Auth, await self.http.request("GET", f"{AUTHS}{auth_id}"), "auth")

    async def images(
        self, *, limit: int, marker: str | None = None, image_type: int | None = None
    ) -> list[Image]:
        params = {"image_type": image_type, "marker": marker, "limit": limit}
        return _parse_list(Image, await self.http.request("GET", IMAGES, params=params), "images")

    async def image(self, image_id: int) -> Image:
        return _parse(Image, await self.http.request("GET", f"{IMAGES}{image_id}"), "image")

    async def containers(self, *, limit: int, marker: int | None = None) -> list[Container]:
        body = await self.http.request("GET", CONTAINERS, params={"limit": limit, "marker": marker})
        return _parse_list(Container, body, "containers")

    async def container(self, container_id: str | int) -> Container:
        return _parse(Container, await self.http.request("GET", f"{CONTAINERS}{container_id}"), "container")

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

    # ---- mutations: dedicated endpoints --------------------------------------------------------
    async def plan_create_endpoint(self, data: NetmindCreateEndpoint) -> Plan:
        flavors = await self.flavors()
        flavor = next((f for f in flavors if f.flavor_id == data.flavor_id), None)
        if flavor is None:
            listed = ", ".join(f"{f.flavor_id} ({f.display_name}, {f.meta_info.region})" for f in flavors)
            raise InvalidInput(
                f"no flavor {data.flavor_id!r}. Available: {listed or 'none'}.",
                provider=self.name,
                hint="See list_offers with provider netmind and kind endpoint.",
            )
        if flavor.node_max_gpu is not None and data.gpu_num > flavor.node_max_gpu:
            raise InvalidInput(
                f"gpu_num {data.gpu_num} is over flavor {flavor.flavor_id}'s node_max_gpu {flavor.node_max_gpu}.",
                provider=self.name,
            )
        warnings = []
        if flavor.available_num is not None and flavor.available_num < data.target_instance_number:
            warnings.append(
                f"flavor {flavor.display_name} reports {flavor.available_num} available; "
                f"{data.target_instance_number} instance(s) requested may not all start."
            )
        body = EndpointCreateBody(
            name=data.name,
            description=data.description,
            payment_type=data.payment_type,
            resource_metadata=EndpointResourceBody(
                flavor_id=data.flavor_id,
                scale_type=data.scale_type,
                target_instance_number=data.target_instance_number,
            ),
            deploy_metadata=EndpointDeployBody(
                image_url=data.image_url, command=data.command, port=data.port, gpu_num=data.gpu_num
            ),
        ).model_dump(exclude_none=True)
        usd, source = self.endpoint_cost(flavor, data.target_instance_number, data.gpu_num)

        async def finish(answer: Any) -> Resource:
            resource = self.endpoint_resource(_parse(Endpoint, answer, "endpoint"))
            resource.region = flavor.meta_info.region
            resource.usd_per_hour = usd
            return resource

        return self.plan(
            operation="netmind_create_endpoint",
            action=(
                f"Create NetMind dedicated endpoint {data.name!r}: {data.image_url} on flavor "
                f"{flavor.display_name} ({flavor.meta_info.region}), {data.target_instance_number} instance(s) "
                f"of {data.gpu_num} GPU(s), port {data.port}."
            ),
            target=data.name,
            request=WireRequest(method="POST", path=SERVICE, json_body=body),
            finish=finish,
            reversible=True,
            reversibility="delete it with delete_resource; instances are billed while they run.",
            usd_per_hour=usd,
            usd_per_hour_max=usd,
            price_source=source,
            gpus=max(data.gpu_num, 1) * data.target_instance_number,
            gpu_name=flavor.display_name,
            warnings=warnings,
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
            finish=self._finish_endpoint,
            reversible=True,
            reversibility="scale it again with update_resource.",
            usd_per_hour=usd,
            usd_per_hour_max=usd,
            price_source=source,
            gpus=max(ep.deploy_metadata.gpu_num or 0, 1) * data.replicas,
            gpu_name=ep.resource_metadata.resource_display_name,
        )

    async def _finish_endpoint(self, answer: Any) -> Resource:
        return self.endpoint_resource(_parse(Endpoint, answer, "endpoint"))

    async def _finish_container(self, answer: Any) -> Resource:
        return self.container_resource(_parse(Container, answer, "container"))

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
            finish=self._finish_container,
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
            finish=self._finish_container,
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
            finish=self._finish_container,
            reversible=False,
            reversibility="deleting a container is permanent; its disk is lost.",
        )

    # ---- mutations: rent GPU ----------------------------------------------------------------
    async def plan_create_auth(self, data: NetmindCreateAuth) -> Plan:
        async def finish(answer: Any) -> dict[str, Any]:
            return self.auth_view(_parse(Auth, answer, "auth")).model_dump(mode="json", exclude={"sandbox"})

        return self.plan(
            operation="netmind_create_auth",
            action="Create a NetMind SSH authentication (a password for container SSH logins).",
            target="ssh auth",
            request=WireRequest(method="POST", path=AUTHS, json_body={"value": data.value}),
            finish=finish,
            reversible=False,
            reversibility="NetMind documents no call to delete an auth.",
            usd_per_hour=0.0,
            price_source=NOT_BILLED,
        )

    async def plan_create_image(self, data: NetmindCreateImage) -> Plan:
        fields = (
            "name",
            "description",
            "image_name",
            "image_tag",
            "image_label",
            "docker_username",
            "docker_passwd",
            "docker_registry",
            "public_port",
            "onstart",
            "options",
        )
        body = {f: getattr(data, f) for f in fields if getattr(data, f) is not None}

        async def finish(answer: Any) -> dict[str, Any]:
            image = self.image_view(_parse(Image, answer, "image"))
            return image.model_dump(mode="json", exclude={"sandbox"})

        return self.plan(
            operation="netmind_create_image",
            action=f"Create NetMind custom image {data.name!r} from {data.image_name}:{data.image_tag}.",
            target=data.name,
            request=WireRequest(method="POST", path=IMAGES, json_body=body),
            finish=finish,
            reversible=False,
            reversibility="NetMind documents no call to delete an image.",
            usd_per_hour=0.0,
            price_source=NOT_BILLED,
        )

    async def plan_create_container(self, data: NetmindCreateContainer) -> Plan:
        machine, usd, source = await self.machine_cost(data.node_name, data.gpu)
        if machine is None:
            raise InvalidInput(
                f"no machine with node_name {data.node_name!r} is listed.",
                provider=self.name,
                hint="See list_offers with provider netmind and kind container (offer_id is the node_name).",
            )
        if machine.gpu_count is not None and data.gpu > machine.gpu_count:
            raise InvalidInput(
                f"gpu {data.gpu} is more than the {machine.gpu_count} GPU(s) of {data.node_name}.",
                provider=self.name,
            )
        try:
            await self.auth(data.auth_id)
        except NotFound:
            raise InvalidInput(
                f"auth_id {data.auth_id} does not exist.",
                provider=self.name,
                hint="Create one with netmind_create_auth, or see netmind_list_auths.",
            ) from None
        try:
            await self.image(data.image_template_id)
        except NotFound:
            raise InvalidInput(
                f"image_template_id {data.image_template_id} does not exist.",
                provider=self.name,
                hint="See netmind_list_images.",
            ) from None
        body = {
            "name": data.name,
            "auth_id": data.auth_id,
            "gpu": data.gpu,
            "node_name": data.node_name,
            "image_template_id": data.image_template_id,
            "payment_type": data.payment_type,
        }

        async def finish(answer: Any) -> Resource:
            resource = self.container_resource(_parse(Container, answer, "container"))
            resource.region = machine.region
            resource.usd_per_hour = usd
            resource.gpu_name = resource.gpu_name or machine.gpu_name
            return resource

        return self.plan(
            operation="netmind_create_container",
            action=(
                f"Create NetMind container {data.name!r}: {data.gpu}x {machine.gpu_name} on {data.node_name} "
                f"({machine.region}), image template {data.image_template_id}, SSH auth {data.auth_id}."
            ),
            target=data.name,
            request=WireRequest(method="POST", path=CONTAINERS, json_body=body),
            finish=finish,
            reversible=True,
            reversibility="stop it with stop_resource or delete it with delete_resource; billed while it runs.",
            usd_per_hour=usd,
            usd_per_hour_max=usd,
            price_source=source,
            gpus=data.gpu,
            gpu_name=machine.gpu_name,
            warnings=[
                f"payment_type {data.payment_type}: NetMind does not publish which currency this integer selects."
            ],
        )


# ---- operation handlers and planners ----------------------------------------------------------
async def _list_machines(tk: Toolkit, data: NetmindListMachines, progress: Progress | None) -> Listing[Offer]:
    offers = await NetmindProvider.of(tk).machine_offers(data)
    offers.sort(key=price_order)
    return Listing[Offer](items=offers, total=len(offers))


async def _list_auths(tk: Toolkit, data: NetmindListAuths, progress: Progress | None) -> NetmindAuthPage:
    adapter = NetmindProvider.of(tk)
    page = await adapter.auths(limit=data.limit, marker=data.marker)
    return NetmindAuthPage(
        items=[adapter.auth_view(a) for a in page],
        total=len(page),
        next_marker=page[-1].id if page and len(page) >= data.limit else None,
    )


async def _get_auth(tk: Toolkit, data: NetmindGetAuth, progress: Progress | None) -> NetmindAuth:
    adapter = NetmindProvider.of(tk)
    return adapter.auth_view(await adapter.auth(data.auth_id), reveal_secrets=data.reveal_secrets)


async def _list_images(tk: Toolkit, data: NetmindListImages, progress: Progress | None) -> NetmindImagePage:
    adapter = NetmindProvider.of(tk)
    page = await adapter.images(limit=data.limit, marker=data.marker, image_type=data.image_type)
    return NetmindImagePage(
        items=[adapter.image_view(i) for i in page],
        total=len(page),
        next_marker=str(page[-1].id) if page and len(page) >= data.limit else None,
    )


async def _get_image(tk: Toolkit, data: NetmindGetImage, progress: Progress | None) -> NetmindImage:
    adapter = NetmindProvider.of(tk)
    return adapter.image_view(await adapter.image(data.image_id), reveal_secrets=data.reveal_secrets)


async def _list_containers(
    tk: Toolkit, data: NetmindListContainers, progress: Progress | None
) -> NetmindContainerPage:
    adapter = NetmindProvider.of(tk)
    page = await adapter.containers(limit=data.limit, marker=data.marker)
    return NetmindContainerPage(
        items=[adapter.container_resource(c) for c in page],
        total=len(page),
        next_marker=page[-1].id if page and len(page) >= data.limit else None,
    )


async def _plan_create_endpoint(tk: Toolkit, data: NetmindCreateEndpoint) -> Plan:
    return await NetmindProvider.of(tk).plan_create_endpoint(data)


async def _plan_create_auth(tk: Toolkit, data: NetmindCreateAuth) -> Plan:
    return await NetmindProvider.of(tk).plan_create_auth(data)


async def _plan_create_image(tk: Toolkit, data: NetmindCreateImage) -> Plan:
    return await NetmindProvider.of(tk).plan_create_image(data)


async def _plan_create_container(tk: Toolkit, data: NetmindCreateContainer) -> Plan:
    return await NetmindProvider.of(tk).plan_create_container(data)


NetmindProvider.operations = [
    Operation(
        name="netmind_create_endpoint",
        title="Create a NetMind dedicated endpoint",
        description="Create a NetMind dedicated inference endpoint: your container image (image_url, command, port) "
        "on target_instance_number instances of a GPU flavor (flavor_id = offer_id from list_offers, kind "
        "endpoint). It is reachable once available (wait_for_resource). Costs money per instance-hour while "
        "it exists. NetMind cannot stop an endpoint: scale it or delete it.",
        input=NetmindCreateEndpoint,
        effect="create",
        planner=_plan_create_endpoint,
        provider="netmind",
    ),
    Operation(
        name="netmind_list_machines",
        toolset="netmind_rent",
        title="List NetMind Rent GPU machines",
        description="List the NetMind Rent GPU machines available to rent, with every filter NetMind offers "
        "(currency, region, gpu count, gpu_names, min/max memory, disk and price), cheapest USD per GPU-hour "
        "first. Each offer_id is the node_name to pass to netmind_create_container. Use list_offers instead to "
        "compare across providers.",
        input=NetmindListMachines,
        output=Listing[Offer],
        effect="read",
        handler=_list_machines,
        provider="netmind",
    ),
    Operation(
        name="netmind_create_auth",
        toolset="netmind_rent",
        title="Create a NetMind SSH auth",
        description="Create a NetMind SSH authentication: the password (value, 8-32 characters) you will use "
        "to SSH into Rent GPU containers. Returns its auth_id for netmind_create_container; the password is "
        "masked in every output. Costs nothing by itself. ",
        input=NetmindCreateAuth,
        effect="create",
        planner=_plan_create_auth,
        provider="netmind",
    ),
    Operation(
        name="netmind_list_auths",
        toolset="netmind_rent",
        title="List NetMind SSH auths",
        description="List your NetMind SSH authentications (auth_id and creation time; passwords masked), one "
        "page at a time: pass next_marker as marker to get the next page.",
        input=NetmindListAuths,
        output=NetmindAuthPage,
        effect="read",
        handler=_list_auths,
        provider="netmind",
    ),
    Operation(
        name="netmind_get_auth",
        toolset="netmind_rent",
        title="Get a NetMind SSH auth",
        description="Read one NetMind SSH authentication by auth_id. The password is masked unless "
        "reveal_secrets is true; only reveal it when the user asks to see it.",
        input=NetmindGetAuth,
        output=NetmindAuth,
        effect="read",
        handler=_get_auth,
        provider="netmind",
    ),
    Operation(
        name="netmind_create_image",
        toolset="netmind_rent",
        title="Create a NetMind custom image",
        description="Register a custom image (environment template) for NetMind Rent GPU containers: a docker "
        "image (image_name, image_tag), a label, and for a private registry docker_username/docker_passwd "
        "(masked in every output). Optional public_port, onstart command and docker options (--add-host, -e, "
        "-h, -w only). Returns the image; its image_id is the image_template_id for netmind_create_container. "
        "Costs nothing by itself. ",
        input=NetmindCreateImage,
        effect="create",
        planner=_plan_create_image,
        provider="netmind",
    ),
    Operation(
        name="netmind_list_images",
        toolset="netmind_rent",
        title="List NetMind images",
        description="List NetMind Rent GPU images (environment templates) a container can start from, one page "
        "at a time (pass next_marker as marker). image_type filters by NetMind's integer type; the default (0) "
        "is the official images. Registry passwords are masked.",
        input=NetmindListImages,
        output=NetmindImagePage,
        effect="read",
        handler=_list_images,
        provider="netmind",
    ),
    Operation(
        name="netmind_get_image",
        toolset="netmind_rent",
        title="Get a NetMind image",
        description="Read one NetMind Rent GPU image by image_id. docker_passwd is masked unless "
        "reveal_secrets is true; only reveal it when the user asks to see it.",
        input=NetmindGetImage,
        output=NetmindImage,
        effect="read",
        handler=_get_image,
        provider="netmind",
    ),
    Operation(
        name="netmind_create_container",
        toolset="netmind_rent",
        title="Create a NetMind Rent GPU container",
        description="Rent GPUs on a NetMind machine as a container: node_name is the offer_id from list_offers "
        "(provider netmind, kind container) or netmind_list_machines, gpu how many of its GPUs (1-12), "
        "image_template_id an image from netmind_list_images, auth_id an SSH auth from netmind_create_auth. "
        "Returns the container with its resource_id (container:<id>) and SSH details. Costs money per "
        "GPU-hour while it runs: the plan shows the estimate from the machine price. Stop, restart "
        "(start_resource) or delete it with the lifecycle tools. NetMind does not publish what its container "
        "status integers mean, so status stays 'unknown' with the integer in raw_status and wait_for_resource "
        "cannot tell when it runs: read get_resource (raw_status, ssh) instead. ",
        input=NetmindCreateContainer,
        effect="create",
        planner=_plan_create_container,
        provider="netmind",
    ),
    Operation(
        name="netmind_list_containers",
        toolset="netmind_rent",
        title="List NetMind containers (one page)",
        description="List your NetMind Rent GPU containers one page at a time (limit, and marker = next_marker "
        "of the previous page). list_resources lists them all, together with your endpoints. Container "
        "statuses are NetMind's raw integers (raw_status); their meaning is not published.",
        input=NetmindListContainers,
        output=NetmindContainerPage,
        effect="read",
        handler=_list_containers,
        provider="netmind",
    ),
]
