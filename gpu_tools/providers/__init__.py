"""The provider adapters, one file each. ADAPTERS maps a provider name to its adapter class."""

from typing import get_args

from gpu_tools.models import ProviderName
from gpu_tools.providers.base import Provider
from gpu_tools.providers.nebius import NebiusProvider
from gpu_tools.providers.neolink import NeolinkProvider
from gpu_tools.providers.netmind import NetmindProvider
from gpu_tools.providers.sesterce import SesterceProvider

ADAPTERS: dict[str, type[Provider]] = {
    cls.name: cls for cls in (NebiusProvider, SesterceProvider, NeolinkProvider, NetmindProvider)
}

if set(ADAPTERS) != set(get_args(ProviderName)):  # pragma: no cover - caught by any test run
    raise RuntimeError("models.ProviderName and providers.ADAPTERS name different providers")

__all__ = ["ADAPTERS", "Provider", "ProviderName"]
