"""gpu-tools: one confirmed, journaled operations core for GPU clouds.

Fronts: `mcp_server` (MCP tools for agents) and `ipython_ext` (`%gpu` magics for notebooks).
"""

__version__ = "0.1.0"

# Every provider registers its declaration here, before anything else of ours is used: Settings then
# always carries each provider's credentials and URLs (see gpu_tools.providers.declare).
import gpu_tools.providers  # noqa: F401
