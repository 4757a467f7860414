"""Which approval a 2026-07-28 call's earlier round asked about, carried in the call's request state.

In the multi-round-trip protocol a tool call is retried with the person's answer; the server keeps
nothing between rounds. The question's approval must therefore travel with the call itself, never be
looked up by its arguments: two identical calls at once are two questions, two approvals and, with
two yeses, two sends. The SDK's resolvers own the request state (a JSON object it seals before it
leaves and checks when it returns, ignoring keys it does not know); the approval id rides in it under
one key of ours. A state that cannot carry it makes the next round ask anew (fail closed).

Every question is awaited in the journal from when it is asked until a call closes it: its send uses
it, or its refusal closes it with the refusal's row (`Journal.record`). One no call ever comes back for
(the client's elicitation failed, it gave up, the call was cancelled) is journaled as refused once it
expires (`Journal.settle_unanswered`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from mcp.server.mcpserver import Context
from mcp.types import InputRequiredResult

from gpu_tools.gate.asking import Question

STATE_KEY = "gpu_tools_approval"


@dataclass
class Round:
    """One round of one call: the approval its earlier round asked (`asked`), and the question this
    round asks (`question`, set by the tool's question resolver)."""

    asked: str | None = None
    question: Question | None = None

    def answered(self) -> str | None:
        """The question a failure of this round leaves unanswered: the one it asked (the form it
        could not show, or whose answer could not be used), else the one its earlier round asked."""
        return self.question.approval.id if self.question is not None else self.asked


_ROUND: ContextVar[Round | None] = ContextVar("gpu_tools_round", default=None)


def current() -> Round | None:
    """This call's round, inside `GpuServer.call_tool` (None elsewhere: nothing is carried)."""
    return _ROUND.get()


def asked_in(ctx: Context | None) -> str | None:
    """The approval named in the request state this round echoes back, or None."""
    state = _state(ctx.request_state if ctx is not None else None)
    value = state.get(STATE_KEY) if state is not None else None
    return value if isinstance(value, str) else None


@contextmanager
def round_of(ctx: Context | None) -> Iterator[Round]:
    round_ = Round(asked=asked_in(ctx))
    token = _ROUND.set(round_)
    try:
        yield round_
    finally:
        _ROUND.reset(token)


def carry(result: InputRequiredResult, round_: Round) -> None:
    """Put the approval this round asked about in the result's request state (in place); nothing
    when nothing was asked, or the state cannot carry it (the next round asks anew)."""
    state = _state(result.request_state) if result.request_state else {}
    if round_.question is None or state is None:
        return
    state[STATE_KEY] = round_.question.approval.id
    result.request_state = json.dumps(state, separators=(",", ":"))


def _state(text: str | None) -> dict[str, object] | None:
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
