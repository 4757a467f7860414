"""Approvals: a confirmation is a row, consumed in the same transaction as the intent it allows
(see `Journal.reserve`), so one approval sends at most one request."""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from gpu_tools.errors import redact_value

if TYPE_CHECKING:
    from gpu_tools.models import Plan

log = logging.getLogger("gpu_tools.journal")

APPROVAL_TTL = timedelta(minutes=10)  # as long as an MCP client may take to answer a question


@dataclass
class Approval:
    id: str
    fingerprint: str
    digest: str
    message: str
    created_at: str
    consumed_at: str | None
    journal_id: int | None
    result: Any
    asked_by: str | None = None
    # Version 6 (the approval page, gpu_tools/journal/decisions.py): see _V6_COLUMNS there.
    expires_at: str | None = None
    mode: str | None = None
    view: Any = None
    client: str | None = None
    status: str | None = None
    decided_by: str | None = None
    decided_how: str | None = None
    decided_at: str | None = None
    # Version 8: the question's plan and effect (JSON), from when it is asked until it is closed (sent,
    # refused), so one no call ever came back for is journaled as refused (`settle_unanswered`).
    awaiting: Any = None
    # The clock `expired` reads: the journal's (the toolkit's `now`), so a test moves it instead of sleeping.
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC), repr=False, compare=False)

    @property
    def expiry(self) -> datetime:
        if self.expires_at:
            return datetime.fromisoformat(self.expires_at)
        return datetime.fromisoformat(self.created_at) + APPROVAL_TTL

    @property
    def expired(self) -> bool:
        return self.expiry < self.clock()

    @property
    def refused(self) -> str | None:
        """Why this question was closed without a send (its refused journal row says the same), or
        None: unused, or used by a send."""
        if isinstance(self.result, dict) and set(self.result) == {"refused"}:
            return str(self.result["refused"])
        return None

    def asked_plan(self) -> Plan | None:
        """The plan this open question showed (secrets masked, as `masked_plan`), or None: closed,
        asked by a version that kept no plan, or unreadable."""
        from pydantic import ValidationError

        from gpu_tools.models import Plan

        awaiting = self.awaiting if isinstance(self.awaiting, dict) else {}
        try:
            return Plan.model_validate(awaiting["plan"]) if "plan" in awaiting else None
        except ValidationError:
            return None


class Approvals:
    """The approvals table; mixed into `Journal`, whose transactions it writes in."""

    if TYPE_CHECKING:
        now: Callable[[], datetime]

        def _tx(self, serialize: bool = False) -> AbstractContextManager[Any]: ...

        def _read(self) -> AbstractContextManager[Any]: ...

        def _stamp(self, precise: bool = False) -> str: ...

        def _insert(self, db: Any, plan: Plan, effect: str, outcome: str, **kw: Any) -> int: ...

    def new_approval(
        self,
        fingerprint: str,
        digest: str,
        message: str | Callable[[str], str],
        *,
        asked_by: str | None = None,
        page: dict[str, Any] | None = None,
        awaiting: tuple[Plan, str] | None = None,
    ) -> Approval:
        """A new, unused approval; `message` may be a function of the approval's id. `page`: what the
        approval page needs (expires_at, mode, view, client; version 6). `awaiting`: the plan and its
        effect, kept until the question is closed (see `settle_unanswered`)."""
        self.settle_unanswered()  # the questions asked before this one that expired unanswered
        approval_id = secrets.token_hex(4)
        if callable(message):
            message = message(approval_id)
        approval = Approval(
            id=approval_id,
            fingerprint=fingerprint,
            digest=digest,
            message=message,
            created_at=self._stamp(precise=True),  # orders approvals made within one second
            consumed_at=None,
            journal_id=None,
            result=None,
            asked_by=asked_by,
            clock=self.now,
            awaiting=_awaiting(*awaiting) if awaiting is not None else None,
            **(page or {}),
        )
        view = json.dumps(redact_value(approval.view)) if approval.view is not None else None
        with self._tx() as db:
            # Approvals older than a week go, unless still open (an approval_ttl longer than a week)
            # or still awaited (settled above once expired: the one refusal row is written first).
            now = self.now()
            db.execute(
                "DELETE FROM approvals WHERE created_at < ? AND awaiting IS NULL"
                " AND (expires_at IS NULL OR expires_at < ?)",
                ((now - timedelta(days=7)).isoformat(timespec="seconds"), now.isoformat(timespec="seconds")),
            )
            db.execute(
                "INSERT INTO approvals (id, fingerprint, digest, message, created_at, asked_by, expires_at,"
                " mode, view, client, awaiting) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    approval.id,
                    fingerprint,
                    digest,
                    message,
                    approval.created_at,
                    asked_by,
                    approval.expires_at,
                    approval.mode,
                    view,
                    approval.client,
                    json.dumps(approval.awaiting) if approval.awaiting is not None else None,
                ),
            )
        return approval

    def _close(self, db: Any, approval_id: str, fingerprint: str | None, reason: str) -> bool:
        """Close an unused question as refused (`reason`), inside `db`'s transaction: it is used up,
        so no later send can take it and no other process journals it again. False: it was used
        (sent) or closed already, or is not this requester's (`fingerprint`), or does not exist."""
        cur = db.execute(
            "UPDATE approvals SET consumed_at=?, awaiting=NULL, result=? WHERE id=? AND consumed_at IS NULL"
            + (" AND fingerprint=?" if fingerprint is not None else ""),
            (
                self._stamp(),
                json.dumps({"refused": redact_value(reason)}),
                approval_id,
                *([fingerprint] if fingerprint is not None else []),
            ),
        )
        return bool(cur.rowcount == 1)

    def _closed_before(self, db: Any, approval_id: str, fingerprint: str) -> bool:
        """This requester's question, used or closed already (its one row is written)."""
        row = db.execute(
            "SELECT 1 FROM approvals WHERE id=? AND fingerprint=? AND consumed_at IS NOT NULL",
            (approval_id, fingerprint),
        ).fetchone()
        return row is not None

    def settle_unanswered(self) -> int:
        """A refused row for every question whose answer never came back before it expired: a form
        left with a client that never returned (its elicitation failed, it gave up), a page approval
        nobody decided, or one decided but never collected by its call. Nothing was sent, and the
        journal says so. Each question is closed with its row in one transaction, so it is settled
        once, whichever process (server, guard) gets there first, and a send that comes later finds
        it used (`Journal.reserve`) and sends nothing."""
        now = self.now()
        cutoff = (now - APPROVAL_TTL).isoformat(timespec="microseconds")
        with self._read() as db:  # most calls find nothing: no write transaction for them
            rows = db.execute(
                "SELECT * FROM approvals WHERE awaiting IS NOT NULL AND consumed_at IS NULL"
                " AND (expires_at < ? OR (expires_at IS NULL AND created_at < ?))",
                (now.isoformat(timespec="seconds"), cutoff),
            ).fetchall()
        settled = 0
        for row in rows:
            approval = self._to_approval(row)
            if approval is None or not approval.expired:
                continue
            plan, effect = _awaited(approval)
            reason = _never_answered(approval)
            with self._tx() as db:
                if not self._close(db, approval.id, None, reason):
                    continue  # another process settled it, or a call used or refused it, meanwhile
                row_id = self._insert(
                    db,
                    plan,
                    effect,
                    "refused",
                    error=reason,
                    actor=approval.asked_by,
                    approval_id=approval.id,
                )
                db.execute("UPDATE approvals SET journal_id=? WHERE id=?", (row_id, approval.id))
            settled += 1
        return settled

    def pending_approvals(self) -> int:
        """Questions still open: neither used, closed nor decided on the page, and not expired (a page approval's own
        expiry, `approval_ttl`; a form question's APPROVAL_TTL after it was asked). For metrics."""
        now = self.now()
        since = (now - APPROVAL_TTL).isoformat(timespec="microseconds")
        with self._read() as db:
            row = db.execute(
                "SELECT COUNT(*) AS n FROM approvals WHERE consumed_at IS NULL AND result IS NULL"
                " AND status IS NULL AND (expires_at >= ? OR (expires_at IS NULL AND created_at >= ?))",
                (now.isoformat(timespec="seconds"), since),
            ).fetchone()
        return int(row["n"])

    def latest_approval(self, fingerprint: str) -> Approval | None:
        with self._read() as db:
            row = db.execute(
                "SELECT * FROM approvals WHERE fingerprint=? ORDER BY created_at DESC, id DESC LIMIT 1",
                (fingerprint,),
            ).fetchone()
            return self._to_approval(row)

    def approval(self, approval_id: str) -> Approval | None:
        with self._read() as db:
            return self._approval(db, approval_id)

    def set_approval_result(self, approval_id: str, result: Any) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE approvals SET result=? WHERE id=?", (json.dumps(redact_value(result)), approval_id)
            )

    def _approval(self, db: Any, approval_id: str) -> Approval | None:
        row = db.execute("SELECT * FROM approvals WHERE id=?", (approval_id,)).fetchone()
        return self._to_approval(row)

    def _to_approval(self, row: Any) -> Approval | None:
        if row is None:
            return None
        data = dict(row)
        data["result"] = json.loads(data["result"]) if data["result"] else None
        data["view"] = json.loads(data["view"]) if data.get("view") else None
        data["awaiting"] = json.loads(data["awaiting"]) if data.get("awaiting") else None
        return Approval(**data, clock=self.now)


def _awaiting(plan: Plan, effect: str) -> dict[str, Any]:
    return redact_value({"effect": effect, "plan": plan.model_dump(mode="json")})


def masked_plan(plan: Plan) -> Plan:
    """`plan` with its texts masked as an open question keeps them (`_awaiting`), to compare with
    `Approval.asked_plan`: a copy, never validated again (a masked value may fit no field's type)."""
    texts = ("action", "target", "gpu_name", "method", "path", "reversibility", "body")
    return plan.model_copy(update={name: redact_value(getattr(plan, name)) for name in texts})


def _awaited(approval: Approval) -> tuple[Plan, str]:
    """The plan and effect an awaited question was asked about. One this version cannot read
    (written by another version sharing the journal) still gets its row, with what could be read."""
    from pydantic import ValidationError

    from gpu_tools.models import Plan

    awaiting = approval.awaiting if isinstance(approval.awaiting, dict) else {}
    effect = awaiting.get("effect")
    effect = effect if isinstance(effect, str) and effect else "create"
    data = awaiting.get("plan")
    try:
        return Plan.model_validate(data), effect
    except ValidationError as exc:
        log.warning("approval %s: its plan cannot be read (%s); journaled without it", approval.id, exc)
    known = data if isinstance(data, dict) else {}

    def text(key: str, default: str, limit: int) -> str:
        value = known.get(key)
        return value[:limit] if isinstance(value, str) and value else default

    plan = Plan(
        provider=text("provider", "unknown", 40),
        operation=text("operation", "unknown", 80),
        action="A question whose plan this version of gpu-tools cannot read (asked by another version).",
        target=text("target", "(unknown)", 200),
        method="",
        path="",
        reversible=True,
        reversibility="nothing was sent",
        sandbox=known.get("sandbox") is True,
    )
    return plan, effect


def _never_answered(approval: Approval) -> str:
    """Why a question that expired unanswered sent nothing, in the words of its refusal row."""
    expired = approval.expiry.isoformat(timespec="seconds")
    if approval.mode is None:
        return (
            f"asked, never answered: the question (approval {approval.id}) was asked, and no answer came "
            f"back before it expired at {expired}"
        )
    if approval.status is None:
        return f"asked on the approval page (approval {approval.id}), never decided before it expired at {expired}"
    return (
        f"{approval.status} on the approval page by {approval.decided_by} at {approval.decided_at}, and the "
        f"call never came back for the decision before approval {approval.id} expired at {expired}"
    )
