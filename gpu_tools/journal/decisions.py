"""Version 6 of the journal: approvals decided on the approval page (`gpu_tools.approvals`).

Every approver's decision is a row of `approval_decisions` (one per approver and approval); an approval
is decided once (`status`), by a quorum of approvers or one denial, in a serialized transaction.
Approvers' passkeys (credential id, public key, signature counter: no secret) and their enrollments
and removals live here too, so every server sharing the journal sees them."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gpu_tools.journal.approvals import Approval

# Version 6: approvals decided on the approval page (gpu_tools.approvals): what the page shows, who
# decided, how (form, page, passkey), every approver's decision, and the approvers' passkeys.
_V6_COLUMNS = {
    "approvals": {
        "expires_at": "TEXT",  # set by approval_ttl; older rows expire APPROVAL_TTL after created_at
        "mode": "TEXT",  # what the policy asked for: form, page or passkey
        "view": "TEXT",  # the plan as the page shows it (JSON, secrets masked)
        "client": "TEXT",  # the MCP client's (or the front's) name
        "status": "TEXT",  # NULL pending, 'approved', 'denied'
        "decided_by": "TEXT",
        "decided_how": "TEXT",
        "decided_at": "TEXT",
    }
}
_V6 = """
CREATE TABLE IF NOT EXISTS approval_decisions (
    approval_id TEXT NOT NULL,
    approver TEXT NOT NULL,
    decision TEXT NOT NULL,
    how TEXT NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (approval_id, approver)
);
CREATE TABLE IF NOT EXISTS approvers (
    name TEXT NOT NULL,
    credential_id TEXT PRIMARY KEY,
    public_key TEXT NOT NULL,
    sign_count INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS approver_events (
    id {ID},
    at TEXT NOT NULL,
    event TEXT NOT NULL,
    name TEXT NOT NULL,
    actor TEXT
)
"""


class Decisions:
    """Decisions and approvers; mixed into `Journal`, whose transactions it writes in."""

    if TYPE_CHECKING:

        def _tx(self, serialize: bool = False) -> AbstractContextManager[Any]: ...

        def _read(self) -> AbstractContextManager[Any]: ...

        def _stamp(self, precise: bool = False) -> str: ...

        def _approval(self, db: Any, approval_id: str) -> Approval | None: ...

        _to_approval: Callable[[Any], Approval | None]

    # ---- approval decisions and approvers (version 6: the approval page) ---------------------
    def decide(
        self, approval_id: str, decision: str, *, by: str, how: str, quorum: int = 1
    ) -> tuple[Approval, bool]:
        """Record one approver's decision. A denial decides at once; approvals decide when `quorum`
        distinct approvers approved. Returns the approval and whether this decision was recorded
        (False: the approval was already decided, or this approver already answered: a conflict)."""
        if decision not in ("approved", "denied"):
            raise RuntimeError('internal error: expected decision in ("approved", "denied")')
        with self._tx(serialize=True) as db:
            approval = self._approval(db, approval_id)
            if approval is None or approval.status is not None or approval.consumed_at is not None:
                return approval, False  # type: ignore[return-value]
            if db.execute(
                "SELECT 1 FROM approval_decisions WHERE approval_id=? AND approver=?", (approval_id, by)
            ).fetchone():
                return approval, False
            now = self._stamp()
            db.execute(
                "INSERT INTO approval_decisions (approval_id, approver, decision, how, at) VALUES (?,?,?,?,?)",
                (approval_id, by, decision, how, now),
            )
            approvers = [
                r[0]
                for r in db.execute(
                    "SELECT approver FROM approval_decisions WHERE approval_id=? AND decision='approved'"
                    " ORDER BY at, approver",
                    (approval_id,),
                )
            ]
            if decision == "denied" or len(approvers) >= quorum:
                db.execute(
                    "UPDATE approvals SET status=?, decided_by=?, decided_how=?, decided_at=? WHERE id=?",
                    (decision, by if decision == "denied" else ", ".join(approvers), how, now, approval_id),
                )
            return self._approval(db, approval_id), True  # type: ignore[return-value]

    def decisions(self, approval_id: str) -> list[dict[str, Any]]:
        with self._read() as db:
            return [
                dict(r)
                for r in db.execute(
                    "SELECT * FROM approval_decisions WHERE approval_id=? ORDER BY at, approver",
                    (approval_id,),
                )
            ]

    def open_approvals(self) -> list[Approval]:
        """Approvals waiting for a decision on the page (unexpired ones; newest first)."""
        with self._read() as db:
            rows = db.execute(
                "SELECT * FROM approvals WHERE status IS NULL AND consumed_at IS NULL AND mode IS NOT NULL"
                " ORDER BY created_at DESC LIMIT 200"
            ).fetchall()
        found = [self._to_approval(r) for r in rows]
        return [a for a in found if a is not None and not a.expired]

    def add_approver(self, name: str, credential_id: str, public_key: str, *, by: str | None) -> None:
        with self._tx(serialize=True) as db:
            db.execute(
                "INSERT INTO approvers (name, credential_id, public_key, sign_count, created_at) VALUES (?,?,?,0,?)",
                (name, credential_id, public_key, self._stamp()),
            )
            db.execute(
                "INSERT INTO approver_events (at, event, name, actor) VALUES (?,?,?,?)",
                (self._stamp(), "enrolled", name, by),
            )

    def remove_approver(self, name: str, *, by: str | None) -> int:
        with self._tx(serialize=True) as db:
            gone = db.execute("DELETE FROM approvers WHERE name=?", (name,)).rowcount
            if gone:
                db.execute(
                    "INSERT INTO approver_events (at, event, name, actor) VALUES (?,?,?,?)",
                    (self._stamp(), "removed", name, by),
                )
            return int(gone)

    def approvers(self) -> list[dict[str, Any]]:
        with self._read() as db:
            return [dict(r) for r in db.execute("SELECT * FROM approvers ORDER BY name, created_at")]

    def approver_events(self) -> list[dict[str, Any]]:
        with self._read() as db:
            return [dict(r) for r in db.execute("SELECT * FROM approver_events ORDER BY id")]

    def use_credential(self, credential_id: str, sign_count: int) -> None:
        with self._tx() as db:
            db.execute("UPDATE approvers SET sign_count=? WHERE credential_id=?", (sign_count, credential_id))
