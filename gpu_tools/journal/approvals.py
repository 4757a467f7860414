"""Approvals: a confirmation is a row, consumed in the same transaction as the intent it allows
(see `Journal.reserve`), so one approval sends at most one request."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from gpu_tools.errors import redact_value

if TYPE_CHECKING:
    from gpu_tools.models import Plan

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
    # Version 8: the question a 2026-07-28 round left with the client, until its answer comes back
    # (`effect` and `plan`, JSON), so one that never does is journaled as refused (`settle_unanswered`).
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
    ) -> Approval:
        """A new, unused approval; `message` may be a function of the approval's id. `page`: what the
        approval page needs (expires_at, mode, view, client; version 6)."""
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
            **(page or {}),
        )
        view = json.dumps(redact_value(approval.view)) if approval.view is not None else None
        with self._tx() as db:
            cutoff = (self.now() - timedelta(days=7)).isoformat(timespec="seconds")
            db.execute("DELETE FROM approvals WHERE created_at < ?", (cutoff,))
            db.execute(
                "INSERT INTO approvals (id, fingerprint, digest, message, created_at, asked_by, expires_at,"
                " mode, view, client) VALUES (?,?,?,?,?,?,?,?,?,?)",
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
                ),
            )
        return approval

    def await_answer(self, approval_id: str, plan: Plan, effect: str) -> None:
        """This question was left with the client (a 2026-07-28 round's request state): its answer
        is awaited, and if none comes back before it expires, `settle_unanswered` journals it."""
        awaiting = json.dumps(redact_value({"effect": effect, "plan": plan.model_dump(mode="json")}))
        with self._tx() as db:
            db.execute(
                "UPDATE approvals SET awaiting=? WHERE id=? AND consumed_at IS NULL", (awaiting, approval_id)
            )

    def answered(self, approval_id: str) -> None:
        """A round came back with this question's answer: whatever it says, the call that carries
        it journals its outcome (a send or a refusal)."""
        with self._tx() as db:
            db.execute(
                "UPDATE approvals SET awaiting=NULL WHERE id=? AND awaiting IS NOT NULL", (approval_id,)
            )

    def settle_unanswered(self) -> int:
        """A refused row for every question left with a client that never answered before it
        expired (its elicitation failed, or it gave up): nothing was sent, and the journal says so.
        Each is settled once, whichever process (server, guard) gets there first."""
        from gpu_tools.models import Plan

        cutoff = (self.now() - APPROVAL_TTL).isoformat(timespec="microseconds")
        settled = 0
        with self._tx() as db:
            rows = db.execute(
                "SELECT id, awaiting, asked_by, created_at FROM approvals"
                " WHERE awaiting IS NOT NULL AND consumed_at IS NULL AND created_at < ?",
                (cutoff,),
            ).fetchall()
            for row in rows:
                taken = db.execute(
                    "UPDATE approvals SET awaiting=NULL WHERE id=? AND awaiting IS NOT NULL"
                    " AND consumed_at IS NULL RETURNING id",
                    (row["id"],),
                ).fetchone()
                if taken is None:
                    continue  # another process settled it, or a send used it, meanwhile
                settled += 1
                awaiting = json.loads(row["awaiting"])
                expired = (datetime.fromisoformat(row["created_at"]) + APPROVAL_TTL).isoformat(
                    timespec="seconds"
                )
                self._insert(
                    db,
                    Plan.model_validate(awaiting["plan"]),
                    awaiting["effect"],
                    "refused",
                    error=f"asked, never answered: the question (approval {row['id']}) was left with the "
                    f"client, and no answer came back before it expired at {expired}",
                    actor=row["asked_by"],
                )
        return settled

    def pending_approvals(self) -> int:
        """Approvals asked within APPROVAL_TTL and neither used nor answered (for metrics)."""
        since = (self.now() - APPROVAL_TTL).isoformat(timespec="microseconds")
        with self._read() as db:
            row = db.execute(
                "SELECT COUNT(*) AS n FROM approvals WHERE consumed_at IS NULL AND result IS NULL AND created_at >= ?",
                (since,),
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
