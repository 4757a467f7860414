"""NetMind: tool arguments, and the results of the provider-only operations."""

import shlex
from typing import Any, ClassVar, Literal, Self

from pydantic import Field, model_validator

from gpu_tools.models import (
    Resource,
    Result,
)
from gpu_tools.operations import (
    INT_ID_MAX,
    MAX_GPUS,
    MAX_REPLICAS,
    NAME_MAX,
    TEXT_MAX,
    URL_MAX,
    CreateInput,
    OpInput,
    ResourceId,
)
from gpu_tools.providers.netmind.wire import IMAGE_OPTIONS, MACHINE_REGIONS


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
    description: str | None = Field(None, description="Optional description.", max_length=TEXT_MAX)
    payment_type: str = Field(
        "usd",
        min_length=1,
        description="Billing currency; the documented value is 'usd'.",
        max_length=20,
    )
    flavor_id: ResourceId = Field(
        min_length=1,
        description="offer_id of a netmind endpoint offer (list_offers).",
    )
    scale_type: str = Field(
        "manual",
        min_length=1,
        description="The documented value is 'manual'.",
        max_length=20,
    )
    target_instance_number: int = Field(1, ge=1, description="Instances (replicas) to run.", le=MAX_REPLICAS)
    image_url: str = Field(
        min_length=1, description="Container image to serve, e.g. python:3.10-slim.", max_length=URL_MAX
    )
    command: str | None = Field(
        None, description="Shell command the container runs at start.", max_length=TEXT_MAX
    )
    port: int = Field(ge=1, le=65535, description="Port the container listens on, e.g. 8080.")
    gpu_num: int = Field(
        1,
        ge=0,
        description="GPUs per instance (deploy_metadata.gpu_num), at most node_max_gpu.",
        le=MAX_GPUS,
    )


class NetmindListMachines(OpInput):
    """Every filter `GET /v1/rentgpu/machines` documents; unset filters are not sent."""

    currency: Literal["USD", "CNY", "NMT"] | None = Field(
        None, description="Currency of the prices (NetMind's default: USD)."
    )
    region: str | None = Field(None, description="Region code, e.g. US, HK, DE, JP, SG, GB.", max_length=2)
    gpu: int | None = Field(
        None, ge=1, le=12, description="GPU count wanted (documented as an integer, default 1)."
    )
    gpu_names: str | None = Field(
        None,
        description="Comma-separated NetMind GPU type names, e.g. NVIDIA_H100_SXM5_80GB,NVIDIA_GeForce_RTX_4090.",
        max_length=TEXT_MAX,
    )
    min_memory: int | None = Field(
        None,
        ge=0,
        description="NetMind's min_memory filter, passed as given (unit not documented).",
        le=10**7,
    )
    max_memory: int | None = Field(
        None, ge=0, description="NetMind's max_memory filter, passed as given.", le=10**7
    )
    min_disk: int | None = Field(
        None, ge=0, description="NetMind's min_disk filter, passed as given.", le=10**7
    )
    max_disk: int | None = Field(
        None, ge=0, description="NetMind's max_disk filter, passed as given.", le=10**7
    )
    min_price: int | None = Field(None, ge=0, description="In `currency`.", le=10**7)
    max_price: int | None = Field(None, ge=0, description="In `currency`.", le=10**7)

    @model_validator(mode="after")
    def _check(self) -> Self:
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
        None, ge=0, description="next_marker of the previous page; omit for the first.", le=INT_ID_MAX
    )
    limit: int = Field(10, ge=1, le=1000, description="Auths per page.")


class NetmindGetAuth(OpInput):
    positional: ClassVar[tuple[str, ...]] = ("auth_id",)
    auth_id: int = Field(
        ge=0, description="The auth id from netmind_list_auths or netmind_create_auth.", le=INT_ID_MAX
    )
    reveal_secrets: bool = Field(False, description="Show the SSH password instead of ***.")


class NetmindCreateImage(CreateInput):
    name: str = Field(min_length=1, description="Name of the image template.", max_length=NAME_MAX)
    description: str | None = Field(
        None, description="Optional description of the image.", max_length=TEXT_MAX
    )
    image_name: str = Field(
        min_length=1, description="Image repository, e.g. pytorch/pytorch.", max_length=URL_MAX
    )
    image_tag: str = Field(min_length=1, description="Image tag, e.g. 2.6.0 or latest.", max_length=NAME_MAX)
    image_label: str = Field(
        min_length=1, description="Label, e.g. pytorch, tensorflow or ubuntu.", max_length=NAME_MAX
    )
    docker_username: str | None = Field(
        None, description="Registry user, for a private image.", max_length=NAME_MAX
    )
    docker_passwd: str | None = Field(
        None, description="Registry password, for a private image. Masked.", max_length=NAME_MAX
    )
    docker_registry: str | None = Field(
        None,
        description="Registry URL for a private image (NetMind's default: https://index.docker.io/v1/).",
        max_length=URL_MAX,
    )
    public_port: str | None = Field(None, description="Port to expose from the container.", max_length=20)
    onstart: str | None = Field(
        None, description="Command run when the container starts.", max_length=TEXT_MAX
    )
    options: str | None = Field(
        None,
        description="docker run options; only --add-host, -e, -h and -w are supported.",
        max_length=TEXT_MAX,
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
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
        le=255,
    )
    marker: str | None = Field(
        None, description="next_marker of the previous page; omit for the first.", max_length=NAME_MAX
    )
    limit: int = Field(10, ge=1, le=1000, description="Images per page.")


class NetmindGetImage(OpInput):
    positional: ClassVar[tuple[str, ...]] = ("image_id",)
    image_id: int = Field(ge=0, description="The image id from netmind_list_images.", le=INT_ID_MAX)
    reveal_secrets: bool = Field(False, description="Show docker_passwd instead of ***.")


class NetmindCreateContainer(CreateInput):
    name: str = Field(min_length=1, max_length=200, description="Container name.")
    auth_id: int = Field(
        ge=0, description="SSH auth id (netmind_create_auth / netmind_list_auths).", le=INT_ID_MAX
    )
    gpu: int = Field(1, ge=1, le=12, description="GPUs to rent on the machine (at most 12).")
    node_name: str = Field(
        min_length=1,
        description="offer_id of a list_offers entry with provider netmind, kind container.",
        max_length=NAME_MAX,
    )
    image_template_id: int = Field(ge=0, description="Image id from netmind_list_images.", le=INT_ID_MAX)
    payment_type: int = Field(
        0,
        ge=0,
        description="NetMind's integer for the balance currency (USD, NMT or CNY; the mapping is not "
        "published, the documented example uses 0).",
        le=255,
    )


class NetmindListContainers(OpInput):
    limit: int = Field(10, ge=1, le=1000, description="Containers per page.")
    marker: int | None = Field(
        None, ge=0, description="next_marker of the previous page; omit for the first.", le=INT_ID_MAX
    )
