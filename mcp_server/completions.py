"""`completion/complete`: values for the arguments of our prompts and of the `gpu://` resource
template (provider names, GPU models, regions, template names, live resource ids), from the core's
`gpu_tools.choices`."""

from __future__ import annotations

from mcp import types
from mcp.server import MCPServer

from gpu_tools.choices import COMPLETABLE, choices
from gpu_tools.toolkit import Toolkit

MAX_VALUES = 100  # the protocol's limit per answer


def add_completions(server: MCPServer, tk: Toolkit, prompts: set[str], templates: set[str]) -> None:
    """Complete the arguments of the prompts named in `prompts` and the resource templates in
    `templates`; anything else gets an empty answer."""

    @server.completion()
    async def complete(
        ref: types.PromptReference | types.ResourceTemplateReference,
        argument: types.CompletionArgument,
        context: types.CompletionContext | None,
    ) -> types.Completion | None:
        known = ref.name in prompts if isinstance(ref, types.PromptReference) else ref.uri in templates
        if not known or argument.name not in COMPLETABLE:
            return None
        given = (context.arguments if context else None) or {}
        values = await choices(tk, argument.name, argument.value, given)
        return types.Completion(
            values=values[:MAX_VALUES], total=len(values), has_more=len(values) > MAX_VALUES
        )
