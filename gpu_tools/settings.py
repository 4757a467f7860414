"""Credentials, base URLs and policy: environment variables first, then a TOML file.

The TOML file is `config.toml` in the platformdirs config directory, or in `$GPU_TOOLS_HOME`
when that is set (tests set it so they never touch the real home). Keys in the file are the
field names below, e.g. `nebius_api_key = "..."`, `max_usd_per_hour = 10`.
"""

import json
import os
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal, Self
from urllib.parse import urlsplit

import platformdirs
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from gpu_tools.durations import parse_duration
from gpu_tools.errors import InvalidInput, register_secret

APP = "gpu-tools"
MIN_TOKEN_LENGTH = 16  # a bearer token shorter than this is refused: it could be guessed
# Roles as OAuth scopes of `gpu-mcp --transport http`: read tools, resources and prompts; mutating tools
# (each still approved); approving on the approval page; managing approvers (enrolling them on the page
# when it signs people in through oauth_issuer; budgets stay settings of the server).
SCOPES = ("gpu.read", "gpu.write", "gpu.approve", "gpu.admin")
# Signature algorithms an access token may use: asymmetric only (no `none`, no HMAC with a shared key).
ASYMMETRIC_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)


def home_dir() -> Path | None:
    value = os.environ.get("GPU_TOOLS_HOME")
    return Path(value).expanduser() if value else None


def config_dir() -> Path:
    return home_dir() or Path(platformdirs.user_config_dir(APP))


def data_dir() -> Path:
    return home_dir() or Path(platformdirs.user_data_dir(APP))


def cache_dir() -> Path:
    return home_dir() or Path(platformdirs.user_cache_dir(APP))


def config_file() -> Path:
    return config_dir() / "config.toml"


def http_token_file() -> Path:
    """Where `gpu-mcp --transport http` writes the bearer token it generates (readable by the user only)."""
    return config_dir() / "http-token"


class StaticToken(BaseModel):
    """A static bearer token's user and the scopes (roles) it holds."""

    model_config = ConfigDict(extra="forbid")
    user: str
    scopes: list[Literal["gpu.read", "gpu.write", "gpu.approve", "gpu.admin"]] = Field(min_length=1)


def _policy(name: str) -> AliasChoices:
    return AliasChoices(name, f"GPU_TOOLS_{name.upper()}")


class Settings(BaseSettings):
    # A rejected value is never echoed in the error: settings hold credentials and shared secrets.
    # Built on first use: each provider's credentials, base URL and own settings are added by its
    # declaration first (`add_setting`, called by gpu_tools.providers.declare).
    model_config = SettingsConfigDict(
        extra="ignore",
        populate_by_name=True,
        case_sensitive=False,
        hide_input_in_errors=True,
        defer_build=True,
    )

    # Policy, enforced by the gate before anyone is asked.
    read_only: bool = Field(False, validation_alias=_policy("read_only"))
    allowed_providers: list[str] | None = Field(None, validation_alias=_policy("allowed_providers"))
    max_usd_per_hour: float | None = Field(None, validation_alias=_policy("max_usd_per_hour"))
    max_gpus: int | None = Field(None, validation_alias=_policy("max_gpus"))
    max_total_usd_per_hour: float | None = Field(
        None,
        validation_alias=_policy("max_total_usd_per_hour"),
        description="Cap on the summed hourly cost of every live resource the journal knows, plus the new one.",
    )
    allowed_gpu_models: list[str] | None = Field(
        None,
        validation_alias=_policy("allowed_gpu_models"),
        description="Canonical GPU models, e.g. ['H100', 'L40S'].",
    )
    offers_cache_ttl: float = Field(
        300.0,
        validation_alias=_policy("offers_cache_ttl"),
        description="Seconds offers are reused per provider.",
    )
    catalog_cache_ttl: float = Field(
        3600.0,
        validation_alias=_policy("catalog_cache_ttl"),
        description="Seconds slowly changing provider data is reused, also by the next process (it is kept "
        "in the cache directory): Sesterce's price per hardware and region and its hardware catalogue, "
        "NeoLink's region list. Offers show each price's age; refresh=True refetches.",
    )
    toolsets: Annotated[list[str] | None, NoDecode] = Field(
        None,
        validation_alias=_policy("toolsets"),
        description="Tool sets the MCP server lists (list_providers names them), e.g. "
        "['reads', 'lifecycle', 'sesterce_admin'], or a comma-separated string in the environment. "
        "'default' stands for the default sets and 'all' for every set. "
        "Default: reads, lifecycle and the set of each provider with credentials that is allowed.",
    )

    # Currency conversion for prices not stated in USD (figures derived with these are marked estimated).
    usd_per_cny: float = Field(0.14, validation_alias=_policy("usd_per_cny"))
    usd_per_nmt: float = Field(2.0, validation_alias=_policy("usd_per_nmt"))

    # HTTP behaviour.
    http_timeout: float = Field(30.0, validation_alias=_policy("http_timeout"))
    http_retries: int = Field(3, validation_alias=_policy("http_retries"))
    provider_timeout: float = Field(
        20.0, validation_alias=_policy("provider_timeout"), description="Budget per provider in fan-outs."
    )

    # Limits that hold with nobody present (enforced by the gate, and by gpu-guard between calls).
    budget_usd_per_day: float | None = Field(
        None, validation_alias=_policy("budget_usd_per_day"), description="Budget over any rolling 24 hours."
    )
    budget_usd_total: float | None = Field(
        None, validation_alias=_policy("budget_usd_total"), description="Budget since budget_start."
    )
    budget_start: datetime | None = Field(
        None,
        validation_alias=_policy("budget_start"),
        description="When budget_usd_total starts counting (ISO date or time; default: the journal's first row).",
    )
    budget_action: Literal["stop", "delete", "warn"] = Field(
        "stop",
        validation_alias=_policy("budget_action"),
        description="What gpu-guard does to this tool's resources, most expensive first, when spend would "
        "cross a budget before its next pass.",
    )
    default_expires_in: str | None = Field(
        None,
        validation_alias=_policy("default_expires_in"),
        description="Lifetime given to every create that names none (e.g. 8h).",
    )
    require_expiry: bool = Field(
        False, validation_alias=_policy("require_expiry"), description="Refuse creates with no expiry."
    )
    guard_interval: float = Field(
        60.0,
        gt=0,
        validation_alias=_policy("guard_interval"),
        description="Seconds between gpu-guard passes.",
    )
    guard_webhook_url: str | None = Field(
        None,
        validation_alias=_policy("guard_webhook_url"),
        description="Receives a JSON POST for each gpu-guard action and budget warning.",
    )
    # ---- approvals (gpu_tools.approvals: the approval page, passkeys) ------------------------------
    approval: Literal["form", "page", "passkey"] = Field(
        "form",
        validation_alias=_policy("approval"),
        description="How a person approves a mutation. form: the client's confirmation form where it can "
        "show one, the approval page everywhere else; page: always the approval page (a form's yes is never "
        "enough); passkey: the page and a passkey of an enrolled approver.",
    )
    approval_above_usd_per_hour: float | None = Field(
        None,
        ge=0,
        validation_alias=_policy("approval_above_usd_per_hour"),
        description="A plan that costs less per hour than this (a stop, a delete) may be approved with the "
        "form; at or above it, `approval` applies. Unset: `approval` applies to every mutation.",
    )
    approval_ttl: str = Field(
        "10m",
        validation_alias=_policy("approval_ttl"),
        description="How long a page or passkey approval stays open (a form question: 10 minutes).",
    )
    approval_wait: str = Field(
        "45s",
        validation_alias=_policy("approval_wait"),
        description="How long a tool call waits for a decision on the page before it answers "
        "approval_pending with the link (call again to continue).",
    )
    approval_port: int = Field(
        0,
        ge=0,
        le=65535,
        validation_alias=_policy("approval_port"),
        description="Port of the loopback approval page of a stdio server (0: a free port).",
    )
    approval_open_browser: bool | None = Field(
        None,
        validation_alias=_policy("approval_open_browser"),
        description="Open the approval page in a browser when an approval is needed (stdio server). "
        "Unset: on where a desktop browser is available.",
    )
    approval_origin: str | None = Field(
        None,
        validation_alias=_policy("approval_origin"),
        description="https://name[:port] where a team's approval page is reached (the passkeys' relying "
        "party); unset: the page's own loopback address.",
    )
    approval_quorum: int = Field(
        1, ge=1, validation_alias=_policy("approval_quorum"), description="Distinct approvers needed."
    )
    approval_separate_requester: bool = Field(
        False,
        validation_alias=_policy("approval_separate_requester"),
        description="The requester's own approval does not count towards the quorum.",
    )
    approval_oidc_client_id: str | None = Field(
        None,
        validation_alias=_policy("approval_oidc_client_id"),
        description="The approval page's client id at oauth_issuer: people sign in to the page through the "
        "provider (authorization code with PKCE); needed by an HTTP server with oauth_issuer set.",
    )
    approval_oidc_client_secret: SecretStr | None = Field(
        None,
        validation_alias=_policy("approval_oidc_client_secret"),
        description="Its secret at the token endpoint (unset: a public client, PKCE only).",
    )
    approval_oidc_scopes: str = Field(
        "openid email gpu.read gpu.approve gpu.admin",
        validation_alias=_policy("approval_oidc_scopes"),
        description="The scopes the page asks the provider for (space separated; must hold openid).",
    )

    reconcile_grace_seconds: float = Field(
        120.0,
        validation_alias=_policy("reconcile_grace_seconds"),
        description="How long after a lost answer reconciliation waits before it calls a create that the "
        "provider does not list a failure (providers may take a moment to list what they made).",
    )
    http_allowed_hosts: list[str] = Field(
        default_factory=list,
        validation_alias=_policy("http_allowed_hosts"),
        description="Host names (host or host:port) clients may use to reach `gpu-mcp --transport http` when "
        "it binds beyond loopback; loopback names are always allowed.",
    )

    http_tokens: Annotated[dict[str, str | StaticToken], NoDecode] = Field(
        default_factory=dict,
        repr=False,
        validation_alias=_policy("http_tokens"),
        description="Bearer tokens of `gpu-mcp --transport http` and the user each stands for: token -> name "
        '(every scope), or token -> {"user": name, "scopes": ["gpu.read", ...]}; the journal records who '
        f"asked and who confirmed. Each token has at least {MIN_TOKEN_LENGTH} characters, no spaces, and "
        "is unique. http_token is the one-user form.",
    )
    http_token: SecretStr | None = Field(
        None,
        validation_alias=_policy("http_token"),
        description="The one bearer token of a one-user `gpu-mcp --transport http` (at least "
        f"{MIN_TOKEN_LENGTH} characters; rows name no user). Unset with no http_tokens: a token is "
        "generated at start and written to the file gpu-mcp names (loopback only).",
    )
    http_state_key: SecretStr | None = Field(
        None,
        min_length=32,
        validation_alias=_policy("http_state_key"),
        description="A secret of at least 32 characters shared by every replica of an HTTP server, so a "
        "confirmation asked by one replica can be answered through another (unset: this process only).",
    )

    sandbox: bool = Field(False, description="True when every provider points at the local sandbox.")
    journal_path: Path | None = Field(None, validation_alias=_policy("journal_path"))
    journal_url: SecretStr | None = Field(
        None,
        validation_alias=_policy("journal_url"),
        description="postgresql://user:password@host:5432/db: one journal shared by a team's servers and "
        "gpu-guard (needs gpu-tools[postgres]). Unset: the SQLite file at journal_path.",
    )

    # ---- OAuth 2.1 resource server, metrics, health and logs of `gpu-mcp --transport http` -------------
    http_public_url: str | None = Field(
        None,
        validation_alias=_policy("http_public_url"),
        description="The server's public MCP URL as clients reach it, e.g. https://gpu.example.com/mcp "
        "(the OAuth resource and default audience; default: http://<host>:<port>/mcp).",
    )
    oauth_issuer: str | None = Field(
        None,
        validation_alias=_policy("oauth_issuer"),
        description="The OAuth authorization server (issuer URL) whose access tokens the HTTP server "
        "accepts beside http_tokens; its metadata and keys are discovered. https unless on loopback.",
    )
    oauth_audience: str | None = Field(
        None,
        validation_alias=_policy("oauth_audience"),
        description="The audience a token's `aud` must hold (default: http_public_url).",
    )
    oauth_user_claim: str = Field(
        "email",
        validation_alias=_policy("oauth_user_claim"),
        description="The claim naming the user in the journal (falls back to `sub`).",
    )
    oauth_roles_claim: str | None = Field(
        None,
        validation_alias=_policy("oauth_roles_claim"),
        description="A claim holding roles named like scopes (gpu.read...), read beside `scope`/`scp`; "
        "a dotted path reaches into objects, e.g. realm_access.roles.",
    )
    oauth_algorithms: list[str] = Field(
        default_factory=lambda: list(ASYMMETRIC_ALGORITHMS),
        validation_alias=_policy("oauth_algorithms"),
        description="Signature algorithms accepted on access tokens (asymmetric only).",
    )
    oauth_leeway_seconds: float = Field(
        30.0,
        ge=0,
        le=300,
        validation_alias=_policy("oauth_leeway_seconds"),
        description="Clock skew allowed.",
    )
    oauth_jwks_min_refresh_seconds: float = Field(
        30.0,
        ge=0,
        validation_alias=_policy("oauth_jwks_min_refresh_seconds"),
        description="Least time between two fetches of the issuer's keys (a token with an unknown key id "
        "fetches them again, at most this often).",
    )
    oauth_introspection_url: str | None = Field(
        None,
        validation_alias=_policy("oauth_introspection_url"),
        description="RFC 7662 introspection endpoint for opaque (non-JWT) access tokens.",
    )
    oauth_client_id: str | None = Field(
        None,
        validation_alias=_policy("oauth_client_id"),
        description="This server's client id at introspection.",
    )
    oauth_client_secret: SecretStr | None = Field(
        None, validation_alias=_policy("oauth_client_secret"), description="Its secret at introspection."
    )
    metrics_token: SecretStr | None = Field(
        None,
        validation_alias=_policy("metrics_token"),
        description="Bearer token Prometheus sends to /metrics of the HTTP server (unset: /metrics is "
        "served only on metrics_port).",
    )
    metrics_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        validation_alias=_policy("metrics_port"),
        description="A separate port serving /metrics without a token (bound to the server's host).",
    )
    guard_expected: bool = Field(
        False,
        validation_alias=_policy("guard_expected"),
        description="/readyz is unready while gpu-guard's heartbeat is older than three guard intervals.",
    )
    log_format: Literal["text", "json"] = Field(
        "text", validation_alias=_policy("log_format"), description="json: one JSON object per log line."
    )

    @field_validator("oauth_algorithms")
    @classmethod
    def _asymmetric_only(cls, value: list[str]) -> list[str]:
        wrong = [alg for alg in value if alg not in ASYMMETRIC_ALGORITHMS]
        if wrong or not value:
            raise ValueError(f"only asymmetric algorithms are accepted ({', '.join(ASYMMETRIC_ALGORITHMS)})")
        return value

    @field_validator("toolsets", mode="before")
    @classmethod
    def _split_toolsets(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("http_tokens", mode="before")
    @classmethod
    def _parse_tokens(cls, value: Any) -> Any:
        # Parsed here (not by pydantic-settings) so a token given twice is refused, not silently merged.
        if isinstance(value, str):
            try:
                value = json.loads(value, object_pairs_hook=_refuse_duplicate_keys)
            except json.JSONDecodeError:
                raise ValueError(
                    'not a JSON object of token -> user name, e.g. {"<token>": "alice"}'
                ) from None
        return value

    @field_validator("http_tokens")
    @classmethod
    def _check_tokens(cls, value: dict[str, str | StaticToken]) -> dict[str, str | StaticToken]:
        # The messages name the problem, never a token.
        for token, user in value.items():
            _check_token(token)
            if not (user if isinstance(user, str) else user.user).strip():
                raise ValueError("a token's user name is empty")
        return value

    @field_validator("http_token")
    @classmethod
    def _check_single_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            _check_token(value.get_secret_value())
        return value

    @model_validator(mode="after")
    def _distinct_tokens(self) -> Self:
        if self.http_token is not None and self.http_token.get_secret_value() in self.http_tokens:
            raise ValueError("http_token is also one of http_tokens: each token must stand for one user")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=config_file()))

    @field_validator("default_expires_in", "approval_ttl", "approval_wait")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_duration(value)
            except ValueError as exc:
                raise ValueError(f"{value!r} {exc}") from None
        return value

    @field_validator("approval_origin")
    @classmethod
    def _https_origin(cls, value: str | None) -> str | None:
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme != "https" or not parts.hostname or parts.path not in ("", "/"):
                raise ValueError(
                    "approval_origin must be https://name[:port] (passkeys need HTTPS beyond loopback)"
                )
            value = f"https://{parts.netloc}"
        return value

    def model_post_init(self, context: Any, /) -> None:
        if not _SECRET_SETTINGS:  # no provider's credentials would be read: refuse rather than ignore them
            raise RuntimeError(
                "no provider is declared yet: import gpu_tools.providers before making Settings"
            )
        self.register_credentials()

    def register_credentials(self) -> None:
        """Every configured credential becomes a secret that no output, log or journal row shows."""
        for name in _SECRET_SETTINGS:
            value = getattr(self, name, None)
            if isinstance(value, SecretStr):
                register_secret(value.get_secret_value())
        for token in self.http_tokens:
            register_secret(token)
        if self.http_token is not None:
            register_secret(self.http_token.get_secret_value())
        if self.http_state_key is not None:
            register_secret(self.http_state_key.get_secret_value())
        for secret in (self.oauth_client_secret, self.metrics_token, self.approval_oidc_client_secret):
            if secret is not None:
                register_secret(secret.get_secret_value())
        password = urlsplit(self.journal_url.get_secret_value()).password if self.journal_url else None
        if password:
            register_secret(password)

    def resolved_journal_path(self) -> Path:
        return self.journal_path or data_dir() / "journal.sqlite3"

    def journal_target(self) -> str | Path:
        """Where the journal lives: the database URL when one is set, else the SQLite file."""
        return self.journal_url.get_secret_value() if self.journal_url else self.resolved_journal_path()

    def sandbox_journal_path(self) -> Path:
        """The sandbox's own journal, never the real one (`GPU_TOOLS_JOURNAL_PATH` included): the
        file `sandbox-<name>` beside it (`sandbox-journal.sqlite3` in the data directory by default).
        Settings already pointed at a sandbox keep theirs."""
        if self.sandbox and self.journal_path is not None:
            return self.journal_path
        real = self.resolved_journal_path()
        return real.with_name(f"sandbox-{real.name}")

    def for_sandbox(self, base_url: str) -> "Settings":
        """A copy of these settings with every provider pointed at a sandbox on `base_url`."""
        copy = self.model_copy(
            update={
                "sandbox": True,
                # The sandbox's resources never mix with real ones: caps, spend, reconciliation and
                # gpu-guard of a real account never see them, nor they the real ones.
                "journal_path": self.sandbox_journal_path(),
                "journal_url": None,  # nor does a team's shared journal
                # Every provider's credentials and URLs, as its declaration says.
                **{name: sandboxed(base_url) for name, sandboxed in _SANDBOX_VALUES.items()},
            }
        )
        copy.register_credentials()
        return copy


class _DuplicateToken(ValueError):
    pass


def _refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise _DuplicateToken("a token appears twice: each token must stand for one user")
    return dict(pairs)


def _check_token(token: str) -> None:
    if not token.strip():
        raise ValueError("a token is empty or only whitespace")
    if any(c.isspace() for c in token):
        raise ValueError("a token contains whitespace")
    if len(token) < MIN_TOKEN_LENGTH:
        raise ValueError(f"a token is shorter than {MIN_TOKEN_LENGTH} characters")


# What each provider's declaration added (see `add_setting`).
_SECRET_SETTINGS: dict[str, None] = {}
_SANDBOX_VALUES: dict[str, Callable[[str], Any]] = {}


def add_setting(
    name: str,
    annotation: Any,
    default: Any = None,
    *,
    description: str | None = None,
    secret: bool = False,
    sandbox: Callable[[str], Any] | None = None,
    default_factory: Callable[[], Any] | None = None,
) -> None:
    """Add a provider's setting to `Settings` (its declaration calls this as it registers): `name`
    in config.toml, `NAME` in the environment. A `secret` one is a credential, redacted from every
    output; `sandbox` gives its value under a sandbox at a base URL."""
    if name in Settings.__pydantic_fields__:
        raise ValueError(f"setting {name!r} is declared twice")
    field = (
        Field(default, description=description)
        if default_factory is None
        else Field(default_factory=default_factory, description=description)
    )
    Settings.__pydantic_fields__[name] = FieldInfo.from_annotated_attribute(annotation, field)
    if secret:
        _SECRET_SETTINGS[name] = None
    if sandbox is not None:
        _SANDBOX_VALUES[name] = sandbox
    if Settings.__pydantic_complete__:  # already in use: build it again with the new field
        Settings.model_rebuild(force=True)


def remove_setting(name: str) -> None:
    """Undo `add_setting` (a provider unregistered)."""
    Settings.__pydantic_fields__.pop(name, None)
    _SECRET_SETTINGS.pop(name, None)
    _SANDBOX_VALUES.pop(name, None)
    if Settings.__pydantic_complete__:
        Settings.model_rebuild(force=True)


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment and config.toml, or a one-line `InvalidInput` naming each bad
    setting and where settings come from (never a pydantic dump)."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        parts = []
        for err in exc.errors(include_url=False):
            # The setting's name only: a deeper location may be a map's key, and http_tokens' keys are tokens.
            # A check across settings has no location: its message names the settings itself.
            message = err["msg"].removeprefix("Value error, ")
            parts.append(f"{err['loc'][0]}: {message}" if err["loc"] else message)
        raise InvalidInput(
            "bad setting: " + "; ".join(parts) + f" (from the environment or {config_file()})."
        ) from None
    except SettingsError as exc:  # a list or map setting whose text is not JSON (its value is not said)
        found = re.search(r'field "(\w+)" from source "(\w+)"', str(exc))
        name, source = found.groups() if found else ("settings", "")
        where = "the environment" if source.startswith(("Env", "DotEnv")) else str(config_file())
        raise InvalidInput(
            f'bad setting: {name} cannot be parsed (from {where}): a list or a map is JSON, e.g. ["a", "b"].'
        ) from None
    except ValueError as exc:  # config.toml is not TOML (a duplicate key, a syntax error) or not UTF-8
        where = str(exc).rsplit("(at ", 1)[-1].rstrip(")") if "(at " in str(exc) else None
        raise InvalidInput(
            f"bad setting: {config_file()} cannot be read as TOML"
            + (f" (at {where})" if where else f" ({type(exc).__name__})")
            + "; fix or remove it."
        ) from None
    except OSError as exc:
        raise InvalidInput(f"bad setting: {config_file()} cannot be read ({exc.strerror}).") from None
