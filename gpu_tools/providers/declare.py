"""A provider declares itself once: one `ProviderSpec`, registered with `register`.

The declaration drives every place that needs to know the providers: the provider names tools
accept (`models.PROVIDER_NAMES`), the adapters the toolkit builds (`ADAPTERS`), the settings
(credentials, base URL, its own settings: added to `Settings`, secret ones redacted, each one's
sandbox value), the tool sets (`operations.TOOLSETS`), the sandbox's routes (mounted under
`/<name>`), the sandbox CLI's environment lines and the MCP server's instructions. `register`
refuses a declaration that is incomplete or disagrees with itself, naming what is missing.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr

from gpu_tools.models import PROVIDER_NAMES
from gpu_tools.operations import TOOLSETS, Operation
from gpu_tools.providers.base import Provider
from gpu_tools.settings import add_setting, remove_setting

SANDBOX_KEY = "sandbox-key"  # every credential's value under the sandbox
_NAME = re.compile(r"^[a-z][a-z0-9]*$")


@dataclass(frozen=True)
class Setting:
    """One setting a provider adds: `name` in config.toml, `NAME` in the environment."""

    name: str
    # A credential must be set for the provider to count as configured.
    credential: bool = False
    # A secret is a `SecretStr`, redacted from every output, log and journal row.
    secret: bool = False
    # Defaults: `SecretStr | None` for a secret, `str | None` otherwise.
    annotation: Any = None
    default: Any = None
    default_factory: Callable[[], Any] | None = None
    description: str | None = None
    # Said after its environment name when the provider is not configured, e.g. "your user id".
    hint: str = ""
    # Its value under a sandbox whose provider URL is given (`{url}`); a secret credential's is the
    # sandbox key, unless said otherwise.
    sandbox: str | None = None

    def field_type(self) -> Any:
        if self.annotation is not None:
            return self.annotation
        return SecretStr | None if self.secret else str | None


@dataclass(frozen=True)
class ProviderSpec:
    """Everything the rest of gpu-tools needs to know about one provider."""

    name: str  # lowercase, the prefix of its settings, tools and tool sets
    title: str  # as people write it, e.g. "Nebius Token Factory"
    adapter: type[Provider]
    base_url: str  # default of the `<name>_base_url` setting
    settings: tuple[Setting, ...]  # its credentials first, then its own settings
    # Its tool sets (name -> what they hold): the one named after it is listed by default when it has
    # credentials; the others are one setting away.
    toolsets: Mapping[str, str]
    operations: tuple[Operation, ...] = ()
    # The module serving its documented API in the sandbox (`routes(sandbox)`, `error`), mounted under
    # `/<name>`, and the API's base path under that mount (NeoLink's `/mdc/api/v1`).
    sandbox: str = ""
    sandbox_path: str = ""

    @property
    def credentials(self) -> tuple[Setting, ...]:
        return tuple(s for s in self.settings if s.credential)

    def all_settings(self) -> tuple[Setting, ...]:
        """Its declared settings and its base URL (`<name>_base_url`)."""
        base = Setting(
            f"{self.name}_base_url",
            annotation=str,
            default=self.base_url,
            sandbox=f"{{url}}{self.sandbox_path}",
        )
        return (*self.settings, base)


# Every registered provider, in registration order; and its adapter class.
PROVIDERS: dict[str, ProviderSpec] = {}
ADAPTERS: dict[str, type[Provider]] = {}


class HalfDeclared(TypeError):
    """A declaration that leaves something out or disagrees with itself."""


def check(spec: ProviderSpec) -> None:
    """Refuse a declaration that would leave a provider half-declared, naming what is wrong."""
    problems: list[str] = []
    if not _NAME.match(spec.name):
        problems.append(f"name {spec.name!r} is not a lowercase word")
    if spec.name in PROVIDERS:
        problems.append(f"{spec.name!r} is already registered")
    if not spec.title:
        problems.append("no title")
    if not (isinstance(spec.adapter, type) and issubclass(spec.adapter, Provider)):
        problems.append("adapter is not a Provider subclass")
    elif inspect.isabstract(spec.adapter):
        missing = ", ".join(sorted(spec.adapter.__abstractmethods__))
        problems.append(f"adapter {spec.adapter.__name__} does not implement {missing}")
    if not spec.base_url.startswith(("https://", "http://")):
        problems.append("base_url is not an http(s) URL")
    if not spec.credentials:
        problems.append("no credential setting")
    for s in spec.settings:
        if not s.name.startswith(spec.name + "_"):
            problems.append(f"setting {s.name!r} does not start with {spec.name}_")
        if s.credential and s.sandbox is None and not s.secret:
            problems.append(f"credential {s.name!r} has no sandbox value")
    if spec.name not in spec.toolsets:
        problems.append(f"no tool set named {spec.name!r} (its default set)")
    for name in spec.toolsets:
        if name != spec.name and not name.startswith(spec.name + "_"):
            problems.append(f"tool set {name!r} does not start with {spec.name}_")
        elif name in TOOLSETS:
            problems.append(f"tool set {name!r} already exists")
    for op in spec.operations:
        if op.provider != spec.name:
            problems.append(f"operation {op.name} says provider={op.provider!r}")
        if not op.name.startswith(spec.name + "_"):
            problems.append(f"operation {op.name} does not start with {spec.name}_")
        if op.toolset not in spec.toolsets:
            problems.append(f"operation {op.name} is in undeclared tool set {op.toolset!r}")
    empty = [t for t in spec.toolsets if not any(op.toolset == t for op in spec.operations)]
    if empty:
        problems.append(f"tool set(s) with no operation: {', '.join(empty)}")
    if not spec.sandbox:
        problems.append("no sandbox module (every provider runs in the sandbox)")
    if problems:
        raise HalfDeclared(f"provider {spec.name!r} is half-declared: " + "; ".join(problems) + ".")


def register(spec: ProviderSpec) -> None:
    """Make `spec` a provider everywhere (see the module docstring)."""
    check(spec)
    for s in spec.all_settings():
        add_setting(
            s.name,
            s.field_type(),
            s.default if s.default_factory is None else None,
            description=s.description,
            secret=s.secret,
            sandbox=_sandbox_value(spec, s),
            default_factory=s.default_factory,
        )
    TOOLSETS.update(spec.toolsets)
    PROVIDER_NAMES.append(spec.name)
    adapter = spec.adapter
    adapter.spec, adapter.name, adapter.title = spec, spec.name, spec.title
    adapter.operations = list(spec.operations)
    PROVIDERS[spec.name] = spec
    ADAPTERS[spec.name] = adapter


def unregister(name: str) -> None:
    """Undo `register` (a provider plugged in for a while, e.g. by a test)."""
    spec = PROVIDERS.pop(name)
    ADAPTERS.pop(name)
    PROVIDER_NAMES.remove(name)
    for toolset in spec.toolsets:
        TOOLSETS.pop(toolset, None)
    for s in spec.all_settings():
        remove_setting(s.name)


def _sandbox_value(spec: ProviderSpec, s: Setting) -> Callable[[str], Any] | None:
    """The setting's value under a sandbox served at a base URL (the provider lives at `/<name>`)."""
    if s.sandbox is None and not (s.credential and s.secret):
        return None
    template = s.sandbox if s.sandbox is not None else SANDBOX_KEY

    def value(base_url: str) -> Any:
        text = template.format(url=f"{base_url}/{spec.name}")
        return SecretStr(text) if s.secret else text

    return value


def sandbox_env(base_url: str, api_key: str) -> dict[str, str]:
    """The environment that points each provider at a sandbox on `base_url` (what `gpu-sandbox`
    prints): every setting with a sandbox value, secret credentials set to `api_key`."""
    env: dict[str, str] = {}
    for spec in PROVIDERS.values():
        for s in spec.all_settings():
            sandboxed = _sandbox_value(spec, s)
            if sandboxed is None:
                continue
            value = api_key if s.secret else sandboxed(base_url)
            env[s.name.upper()] = str(value)
    return env


def titles() -> str:
    """Every provider's title, as a sentence: `A, B, C and D`."""
    names = [spec.title for spec in PROVIDERS.values()]
    return f"{', '.join(names[:-1])} and {names[-1]}" if len(names) > 1 else "".join(names)
