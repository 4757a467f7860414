"""Approval bookkeeping: the question a front asks (a plan and the approval a yes consumes), the
approval page's approvals, and whether an approval lets its plan be sent under the policy in force.

An approval is a journal record bound to one plan (its digest) and one requester (the fingerprint of
the call's arguments and user), expiring, used once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from gpu_tools.approvals import plan_view
from gpu_tools.errors import redact_known
from gpu_tools.gate.identity import cost_text
from gpu_tools.journal import Approval
from gpu_tools.models import Plan
from gpu_tools.operations import MutationInput
from gpu_tools.secrets import mask_secrets

if TYPE_CHECKING:
    from gpu_tools.context import Context


@dataclass
class Question:
    """What a front asks a person: the plan, and the approval a yes will consume."""

    plan: Plan
    approval: Approval
    mode: str = "form"  # how the person approves it: form, page or passkey (gpu_tools.approvals)

    @property
    def text(self) -> str:
        return self.approval.message

    @property
    def on_the_page(self) -> bool:
        return self.mode != "form"


async def page_question(
    tk: Context,
    data: MutationInput,
    plan: Plan,
    fp: str,
    digest: str,
    asked_by: str | None,
    client: str | None,
    mode: str,
    effect: str,
) -> Question:
    """The page approval of this plan and requester: the latest one while it is unexpired, unused
    and for this very plan (pending or decided: calling again waits on it or is refused by its
    denial), else a new one. A used approval is never offered to a new call: once its send is done
    (or under way), calling again is a new question; the explicit way to say "the same request" is
    the same idempotency key, which replays the first outcome before anything is asked."""
    journal = tk.journal.aio
    latest = await journal.latest_approval(fp)
    if latest is not None and latest.mode is not None and not latest.expired and latest.consumed_at is None:
        if latest.digest == digest:
            return Question(plan, latest, latest.mode)
        # The plan changed while its page approval was open: that question is answered, not used.
        await journal.record(
            plan,
            effect,
            "refused",
            error=f"the plan changed while approval {latest.id} was open on the approval page (now "
            f"{cost_text(plan)}): it was not used, and the new plan is asked",
            actor=latest.asked_by or asked_by,
            closes=(latest.id, fp),
        )
    text = plan.message(redact_known)
    expires = tk.now() + tk.approvals.ttl()
    args = data.model_dump(mode="json", exclude={"dry_run"})
    adapter = tk.adapters.get(plan.provider)  # its secret fields masked by name, as its answers are
    args = adapter.mask(args) if adapter is not None else mask_secrets(args)
    view = await journal.run(plan_view, tk, plan, args)
    approval = await journal.new_approval(
        fp,
        digest,
        lambda aid: f"{text}\n(approval {aid})",
        asked_by=asked_by,
        page={
            "expires_at": expires.isoformat(timespec="seconds"),
            "mode": mode,
            "view": view,
            "client": client,
        },
        awaiting=(plan, effect),
    )
    return Question(plan, approval, mode)


def page_problem(approval: Approval, mode: str) -> str | None:
    """Why this approval does not let its plan be sent under approval mode `mode`, or None."""
    if approval.mode is None:
        if mode == "form":
            return None
        return f"approval={mode}: a form's yes is not enough; this plan must be approved on the approval page"
    if approval.status == "denied":
        return f"denied on the approval page by {approval.decided_by} at {approval.decided_at}"
    if approval.status != "approved":
        return f"approval {approval.id} has not been approved on the approval page"
    if mode == "passkey" and approval.decided_how != "passkey":
        return "approval=passkey: this approval was not given with an enrolled approver's passkey"
    return None
