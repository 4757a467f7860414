"""The IPython front: `%gpu <subcommand>` and `%%gpu`, one subcommand per registry operation.

`%load_ext ipython_ext`, then `%gpu help`. Subcommands are the operation names with hyphens
(`%gpu list-offers`, `%gpu nebius-create-endpoint ...`) plus short aliases (`%gpu ls`). Arguments
come from the operation's input model: `provider` and `resource_id` are positional, everything else
is a `--flag`. A mutating subcommand prints its plan and asks y/N; `--yes` typed by the person skips
the question (never text that came from a `{variable}`); with no stdin (nbclient, papermill) the
answer is no. The async core runs on one background event-loop thread owned by the extension, so
cells never need `await`.

Loading the extension imports only IPython: the core (providers, pydantic models, httpx, the
sandbox) is imported by the first `%gpu` call that needs it.
"""

from __future__ import annotations

from typing import Any

from ipython_ext.magics import GpuMagics

__all__ = ["GpuMagics", "load_ipython_extension", "unload_ipython_extension"]


def load_ipython_extension(ipython: Any) -> None:
    magics = GpuMagics(ipython)
    ipython.register_magics(magics)
    from ipython_ext.completion import completion_matcher

    ipython.Completer.custom_matchers.append(completion_matcher(magics))
    ipython._gpu_magics = magics


def unload_ipython_extension(ipython: Any) -> None:
    magics = getattr(ipython, "_gpu_magics", None)
    if magics is not None:
        ipython.Completer.custom_matchers[:] = [
            m
            for m in ipython.Completer.custom_matchers
            if getattr(m, "matcher_identifier", "") != "gpu_tools.magic"
        ]
        magics.close()
        del ipython._gpu_magics
