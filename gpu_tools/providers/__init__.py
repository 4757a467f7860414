"""The providers: one package each (`wire`, `inputs`, `adapter`, `operations`) and one declaration
each (`PROVIDER`, a `declare.ProviderSpec`), registered here in the order they are listed.

Adding a provider is adding its package and its line below (see ARCHITECTURE.md, "Add a provider").
"""

from gpu_tools.providers import nebius, neolink, netmind, sesterce
from gpu_tools.providers.base import Provider
from gpu_tools.providers.declare import ADAPTERS, PROVIDERS, register

for _provider in (nebius, sesterce, neolink, netmind):
    register(_provider.PROVIDER)

__all__ = ["ADAPTERS", "PROVIDERS", "Provider"]
