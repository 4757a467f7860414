"""gpu-tools: one confirmed, journaled operations core for GPU clouds.

Fronts: `mcp_server` (MCP tools for agents) and `ipython_ext` (`%gpu` magics for notebooks).
"""

__version__ = "0.1.0"
