"""The send: reserve (approval, idempotency key, caps and the intent row in one transaction), send the
one request, journal what the provider answered. An approval already used, or a key already used,
answers with the first outcome (`replayed`), never a second request; an answer lost on the way
(`OutcomeUnknown`) leaves the row `unknown`, never resent."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from gpu_tools.errors import (
    ConfirmationRefused,
    GpuToolsError,
    InvalidInput,
    OutcomeUnknown,
    PolicyRefused,
    ProviderError,
    UnderWay,
)
from gpu_tools.gate.caps import Caps
from gpu_tools.journal import Approval
from gpu_tools.models import MutationResult, Plan, Resource
from gpu_tools.operations import Operation

if TYPE_CHECKING:
    from gpu_tools.context import Context
    from gpu_tools.journal import Reservation

EFFECT_OF_STEP = {"delete_resource": "destroy"}  # steps of other operations are updates
CHECK_HINT = "Run reconcile (or list_resources) to see what the provider holds; nothing will be resent."
# What a person does when the same change is under way (`UnderWay`).
UNDER_WAY_HINT = "Run reconcile to learn how the first one ended, then ask again if it is still needed."


@dataclass
class Order:
    """One request to send, and what its journal rows record about it."""

    plan: Plan
    effect: str
    op: Operation | None = None  # None: one step of a multi-step plan (its caps were met as a whole)
    key: str | None = None  # the idempotency key
    args: str | None = None  # the hash of the arguments the key is bound to
    approval: Approval | None = None
    expires_at: str | None = None
    final: bool = True  # this send completes its approval (not one step of several)
    actor: str | None = None
    confirmed_by: str | None = None


def unplanned(op: Operation, provider: str | None, sandbox: bool, target: str = "(not planned)") -> Plan:
    """The plan a refusal row carries when the call was refused before it could be planned."""
    return Plan(
        provider=(provider or op.provider or "unknown")[:40],
        operation=op.name,
        action=f"{op.title} (not planned: the call was refused first).",
        target=target,
        method="",
        path="",
        reversible=True,
        reversibility="nothing was sent",
        sandbox=sandbox,
    )


class Sender:
    def __init__(self, tk: Context, caps: Caps) -> None:
        self.tk = tk
        self.caps = caps
        self.in_flight: set[int] = set()  # journal rows being sent by this process right now

    async def send(self, order: Order) -> MutationResult:
        """Reserve, send the one request, journal the outcome."""
        plan = order.plan
        if plan._request is None or plan._finish is None:
            raise RuntimeError("planners must attach the request")
        marked: list[int] = []

        # Marked in flight in the journal's transaction, before the approval is seen used, until its
        # outcome is journaled: a replay meanwhile is told it runs.
        def sending(row_id: int) -> None:
            marked.append(row_id)
            self.in_flight.add(row_id)

        reservation = None
        try:
            reservation = await self._reserve(order, sending)
        finally:  # an id whose transaction did not commit is no send
            kept = reservation.row_id if reservation is not None else None
            self.in_flight.difference_update(r for r in marked if r != kept)
        if reservation.used is not None:
            return await self.replay_used(reservation.used, plan)
        if reservation.key_row is not None and order.op is not None:
            approval = order.approval  # the key was used meanwhile: this call's question is not used
            closes = (approval.id, approval.fingerprint) if approval is not None else None
            return await self.replay_key(
                order.op, order.args, reservation.key_row, actor=order.actor, closes=closes
            )
        if reservation.busy is not None:
            raise UnderWay(
                f"{reservation.busy}. Nothing was sent.", provider=plan.provider, hint=UNDER_WAY_HINT
            )
        if reservation.refused is not None:
            raise PolicyRefused(
                f"refused by policy {reservation.refused} Nothing was sent.", provider=plan.provider
            )
        if reservation.row_id is None:
            raise RuntimeError("internal error: a reservation with no intent row")
        adapter = self.tk.adapter(plan.provider)
        row_id = reservation.row_id
        try:
            outcome = await self._request(plan, row_id, adapter)
            result = self._result(plan, row_id, outcome, adapter)
            await self._journal_done(order, row_id, result)
        finally:
            self.in_flight.discard(row_id)
        return result

    async def _reserve(self, order: Order, sending: Callable[[int], None]) -> Reservation:
        """One transaction: the approval unused, the key free, the caps met (`order.op`'s, against
        what is live or in flight), the intent row written."""
        op, plan = order.op, order.plan
        return await self.tk.journal.aio.reserve(
            plan,
            order.effect,
            idempotency_key=order.key,
            args_hash=order.args,
            approval_id=order.approval.id if order.approval else None,
            expires_at=order.expires_at,
            kind=plan.kind,
            cap=None if op is None else (lambda view: self.caps.in_transaction(plan, op, view)),
            actor=order.actor,
            confirmed_by=order.confirmed_by,
            sending=sending,
            step=not order.final,
        )

    async def _request(self, plan: Plan, row_id: int, adapter: Any) -> Any:
        """Send the request and read its answer; journal a failure (`failed`, or `unknown` when the
        provider may have acted) and raise it. Anything else (cancellation, a crash) leaves the row
        `unknown` on purpose."""
        request, finish = plan._request, plan._finish
        if request is None or finish is None:
            raise RuntimeError("planners must attach the request")
        try:
            answer = await adapter.http.request(
                request.method, request.path, json_body=request.json_body, params=request.params
            )
        except OutcomeUnknown as exc:
            await self.finish(plan, row_id, "unknown", error=str(exc))
            raise OutcomeUnknown(
                f"{exc.message} Journal #{row_id} stays 'unknown' and counts as live for caps and spend "
                "until reconciliation finds what the provider holds.",
                provider=exc.provider,
                hint=CHECK_HINT,
            ) from None
        except ProviderError as exc:
            await self.finish(plan, row_id, "failed", error=str(exc))
            raise
        try:
            return await finish(answer)
        except GpuToolsError as exc:
            # The provider accepted the request (2xx) but its answer could not be read.
            await self.finish(plan, row_id, "unknown", error=f"answer not understood: {exc}")
            raise OutcomeUnknown(
                f"{plan.method} {plan.path} was accepted, but the answer could not be read ({exc.message}). "
                f"Journal #{row_id} stays 'unknown'.",
                provider=plan.provider,
                hint=CHECK_HINT,
            ) from None

    def _result(self, plan: Plan, row_id: int, outcome: Any, adapter: Any) -> MutationResult:
        """What the call answers: the resource made or changed, or the provider's answer masked."""
        sandbox = self.tk.settings.sandbox
        result = MutationResult(outcome="done", plan=plan, journal_id=row_id, sandbox=sandbox)
        if isinstance(outcome, Resource):
            outcome.sandbox = sandbox
            result.resource = outcome
        elif isinstance(outcome, BaseModel):
            result.detail = adapter.mask(outcome.model_dump(mode="json", exclude={"sandbox"}))
        elif outcome is not None:
            result.detail = adapter.mask(outcome)
        return result

    async def _journal_done(self, order: Order, row_id: int, result: MutationResult) -> None:
        """The row becomes `ok` with the resource it is about; the approval keeps the result a
        replay of it returns."""
        plan = order.plan
        stored = result.model_dump(mode="json", exclude={"outcome", "sandbox"})
        made = result.resource
        await self.finish(
            plan,
            row_id,
            "ok",
            resource_id=made.resource_id if made else (None if order.effect == "create" else plan.target),
            result=stored,
            kind=made.kind if made else None,
        )
        if order.approval is not None and order.final:
            await self.finish(plan, row_id, None, approval_id=order.approval.id, stored=stored)

    async def finish(
        self,
        plan: Plan,
        row_id: int,
        outcome: str | None,
        *,
        approval_id: str | None = None,
        stored: Any = None,
        **kw: Any,
    ) -> None:
        """Journal what the provider answered (and the approval's result). The provider has the
        request by now: if the journal cannot be written, say what that means for the money."""
        try:
            if outcome is not None:
                await self.tk.journal.aio.finish(row_id, outcome, **kw)
            if approval_id is not None:
                await self.tk.journal.aio.set_approval_result(approval_id, stored)
        except Exception as exc:  # the journal's database went away between the intent and the answer
            raise OutcomeUnknown(
                "the provider received the request: the resource may exist; it is journaled as unknown "
                f"(journal #{row_id}) and reconciled when the database is back. ({exc})",
                provider=plan.provider,
                hint=CHECK_HINT,
            ) from None

    async def send_steps(
        self, plan: Plan, approval: Approval, actor: str | None = None, confirmed_by: str | None = None
    ) -> MutationResult:
        """Send each step as its own journaled request; one failing step does not stop the others.
        The approval is consumed by the first step that is sent (a step whose same change is under
        way is skipped and leaves it to the next); when every step is skipped, a refused row closes it."""
        done: list[dict[str, Any]] = []
        unused: Approval | None = approval  # until a step's reservation consumes it
        for step in plan.steps:
            where = {"target": step.target, "provider": step.provider}
            carries = unused
            try:
                result = await self.send(
                    Order(
                        step,
                        EFFECT_OF_STEP.get(step.operation, "update"),
                        approval=carries,
                        expires_at=step.expires_at,
                        final=False,
                        actor=actor,
                        confirmed_by=confirmed_by,
                    )
                )
                unused = None
                if carries is not None and result.outcome == "replayed":
                    return result
                done.append({**where, "outcome": "ok", "journal_id": result.journal_id})
            except UnderWay as exc:  # the same change to it is under way (someone else's): not sent again
                done.append({**where, "outcome": "skipped", "error": str(exc)})
            except ConfirmationRefused:
                if carries is not None:
                    raise
            except GpuToolsError as exc:
                unused = None
                done.append({**where, "outcome": "failed", "error": str(exc)})
        if unused is not None:  # nothing was sent: the question ends in its refused row
            effect = EFFECT_OF_STEP.get(plan.steps[0].operation, "update") if plan.steps else "update"
            await self.tk.journal.aio.record(
                plan,
                effect,
                "refused",
                error="every step was already under way (sent by someone else): nothing was sent",
                actor=actor,
                closes=(unused.id, unused.fingerprint),
            )
        result = MutationResult(
            outcome="done", plan=plan, detail={"steps": done}, sandbox=self.tk.settings.sandbox
        )
        await self.tk.journal.aio.set_approval_result(
            approval.id, result.model_dump(mode="json", exclude={"outcome", "sandbox"})
        )
        return result

    async def replay_key(
        self,
        op: Operation,
        args: str | None,
        row: dict[str, Any],
        *,
        actor: str | None = None,
        closes: tuple[str, str] | None = None,
    ) -> MutationResult:
        """A call whose idempotency key was used before: the first outcome, or a journaled refusal
        when the key was first used with other arguments (`args`, their hash). `closes`: the question
        this call answers, which is not used either way (closed with the refusal's row, or with a row
        saying the key replayed its first outcome)."""
        used = f"idempotency_key {row['idempotency_key']!r} was first used at {row['at']} by {op.name} for {row['target']} (journal #{row['id']})"
        if row.get("args_hash") and row["args_hash"] != args:
            message = f"{used} with different arguments. Nothing was sent; use a new key for a new request."
            error = f"idempotency key reused with other arguments: {used}"
            await self._refuse_key(op, row, error, actor, closes)
            raise InvalidInput(message, provider=row["provider"])
        if row["outcome"] != "ok":
            reason = f"{used}; it was sent but its outcome is unknown, so nothing was sent again"
            error = f"idempotency key reused while its first use is unknown: {used}"
            await self._refuse_key(op, row, error, actor, closes)
            raise ConfirmationRefused(f"{reason}.", provider=row["provider"], hint=CHECK_HINT)
        if closes is not None:
            error = f"not sent: {used}, and this call replays its first outcome"
            await self._refuse_key(op, row, error, actor, closes)
        stored = await self.tk.journal.aio.run(self.tk.journal.result_of, row["id"]) or {}
        return MutationResult.model_validate(
            {**stored, "outcome": "replayed", "sandbox": self.tk.settings.sandbox}
        )

    async def _refuse_key(
        self,
        op: Operation,
        row: dict[str, Any],
        error: str,
        actor: str | None,
        closes: tuple[str, str] | None,
    ) -> None:
        """The journaled refusal of a call whose key cannot be replayed (other arguments, unknown outcome)."""
        target = str(row["target"] or "(not planned)")
        await self.tk.journal.aio.record(
            unplanned(op, row["provider"], self.tk.settings.sandbox, target=target),
            op.effect,
            "refused",
            error=error,
            actor=actor,
            closes=closes,
        )

    async def replay_used(self, approval: Approval, plan: Plan) -> MutationResult:
        """A yes whose approval was used already: refused while that send is still running in this
        process (its outcome is not known yet, nor lost), else its first outcome (`replay_approval`)."""
        if approval.journal_id is not None and approval.journal_id in self.in_flight:
            raise ConfirmationRefused(
                f"approval {approval.id} is being used right now by a send in progress (journal "
                f"#{approval.journal_id}); an approval sends its request once, so nothing was sent again. "
                "Wait for that call's answer (or read history in a moment); call again afterwards to be "
                "asked anew.",
                provider=plan.provider,
            )
        return await self.tk.journal.aio.run(self.replay_approval, approval, plan)

    def replay_approval(self, approval: Approval, plan: Plan) -> MutationResult:
        """A yes that was already used: its first outcome, never a second send."""
        if approval.refused is not None:
            raise ConfirmationRefused(
                f"approval {approval.id} was already answered: it was refused (journal #{approval.journal_id}: "
                f"{approval.refused}). Nothing was sent. Call again to be asked anew.",
                provider=plan.provider,
            )
        if approval.result is not None:
            return MutationResult.model_validate(
                {**approval.result, "outcome": "replayed", "sandbox": self.tk.settings.sandbox}
            )
        row = self.tk.journal.row(approval.journal_id) if approval.journal_id else None
        state = row["outcome"] if row else "unknown"
        why = f": {row['error']}" if row and row.get("error") else ""
        raise ConfirmationRefused(
            f"approval {approval.id} was already used (journal #{approval.journal_id}, outcome {state}{why}). "
            "An approval sends its request once: nothing was sent again. Call again to be asked anew.",
            provider=plan.provider,
            hint=CHECK_HINT if state == "unknown" else None,
        )
