"""Reconciliation: journal rows whose outcome is unknown, checked against what the providers hold.

A create whose answer was lost is looked for in the provider's own list by the name it carried: if
the provider holds it, the row becomes `ok` with the resource's id (so caps, spend, expiry and the
guard see it); if the provider answered and holds nothing of that name, and the row is older than
`reconcile_grace_seconds` (a provider may take a moment to list what it just made), the row becomes
`failed`. Deletes, stops and starts are checked by reading the resource. Each change is journaled
on the row with a note saying what was found. Nothing is ever resent.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from gpu_tools.errors import GpuToolsError, NotFound
from gpu_tools.models import Reconciled, ReconcileReport, Resource

if TYPE_CHECKING:
    from gpu_tools.context import Context

# The effects whose unknown rows change what is live or what it costs.
LIVE_EFFECTS = ("create", "update", "destroy")
EXPECTED = {"stop_resource": ("stopped",), "start_resource": ("running", "pending")}


def pending_rows(
    tk: Context, provider: str | None = None, effects: tuple[str, ...] | None = None
) -> list[dict[str, Any]]:
    """Unknown rows this process is not sending right now."""
    return [
        r
        for r in tk.journal.unknown_rows()
        if r["id"] not in tk.gate.in_flight
        and (provider is None or r["provider"] == provider)
        and (effects is None or r["effect"] in effects)
    ]


def _age(tk: Context, row: dict[str, Any]) -> float:
    return (tk.now() - datetime.fromisoformat(row["at"])).total_seconds()


async def reconcile(tk: Context, provider: str | None = None) -> ReconcileReport:
    """Check every unknown row (of one provider, or all) once; journal what was found. Questions a
    client never answered before they expired are journaled as refused first."""
    await tk.journal.aio.settle_unanswered()
    items: list[Reconciled] = []
    stamp = tk.now().isoformat(timespec="seconds")
    for row in await tk.journal.aio.run(pending_rows, tk, provider):
        if not tk.configured(row["provider"]):
            continue
        outcome, found, note = await _check(tk, row)
        note = f"reconciled {stamp}: {note}"
        resource_id = found.resource_id if found is not None else None
        if outcome != "unknown":
            result = await tk.journal.aio.result_of(row["id"]) or {}
            if found is not None:  # what a replay of this create's key returns
                result = {
                    **result,
                    "resource": found.model_dump(mode="json", exclude={"sandbox"}),
                    "journal_id": row["id"],
                }
            await tk.journal.aio.finish(
                row["id"],
                outcome,
                resource_id=resource_id,
                kind=found.kind if found is not None else None,
                note=note,
                error=row.get("error") if outcome == "failed" else None,
                result=result or None,
            )
        else:
            await tk.journal.aio.note(row["id"], note)
        items.append(
            Reconciled(
                journal_id=row["id"],
                provider=row["provider"],
                operation=row["operation"],
                target=row["target"],
                outcome=outcome,  # type: ignore[arg-type]
                resource_id=resource_id,
                note=note,
            )
        )
    unresolved = len(await tk.journal.aio.run(pending_rows, tk, provider))
    return ReconcileReport(items=items, unresolved=unresolved)


async def _check(tk: Context, row: dict[str, Any]) -> tuple[str, Resource | None, str]:
    adapter = tk.adapters[row["provider"]]
    settled = _age(tk, row) >= tk.settings.reconcile_grace_seconds
    try:
        if row["effect"] == "create":
            found = await adapter.find_created(row)
            if found is not None:
                return (
                    "ok",
                    found,
                    f"the provider holds {found.resource_id} ({found.raw_status or found.status})",
                )
            if settled:
                return (
                    "failed",
                    None,
                    f"the provider holds no resource named {row['target']!r}: the create did not take effect",
                )
            return "unknown", None, "not listed yet; checked again on the next pass"
        if row["effect"] == "update" and row["operation"] not in EXPECTED:
            current = await adapter.get_resource(row["target"])
            return (
                "unknown",
                None,
                f"the resource is {current.status}; whether this change took effect cannot be read",
            )
        try:
            current: Resource | None = await adapter.get_resource(row["target"])
        except NotFound:
            current = None
        if row["effect"] == "destroy":
            if current is None or current.status == "deleting":
                return (
                    "ok",
                    None,
                    "the resource is gone" if current is None else "the resource is being deleted",
                )
            if settled:
                return "failed", None, f"the provider still holds it ({current.raw_status or current.status})"
            return "unknown", None, f"still {current.status}; checked again on the next pass"
        if current is None:
            return "failed", None, "the resource no longer exists"
        if current.status in EXPECTED.get(row["operation"], ()):
            return "ok", None, f"the resource is {current.status}"
        if settled:
            return "failed", None, f"the resource is {current.status}, not what was asked"
        return "unknown", None, f"the resource is {current.status}; checked again on the next pass"
    except GpuToolsError as exc:
        return "unknown", None, f"could not check: {exc}"
