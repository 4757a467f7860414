"""`gpu-guard`: the limits a person set, held while nobody is watching.

Each pass:
1. reconciles journal rows whose outcome is unknown against the providers' lists;
2. carries out expiries: every resource past its `expires_at` is deleted or stopped, as the plan the
   person confirmed at create said (`expires_action`), so the guard acts on an approval already given;
3. enforces budgets: when spend would cross `budget_usd_per_day` or `budget_usd_total` before the next
   pass, applies `budget_action` (stop, delete or warn) to this tool's resources, most expensive first,
   until the projection fits;
4. journals every action with `gpu-guard` as the actor, prints one line per action, and POSTs a small
   JSON notice to `guard_webhook_url` if set.

It only ever touches resources the journal says this tool created. It writes a heartbeat to the
journal, which `spend` reads to tell whether the guard is running. Several gpu-guards may watch one
shared journal (a team's, on PostgreSQL): each pass first takes a lease in the journal, and a guard
that finds another's lease running skips its pass, so no resource is acted on twice. The lease is
renewed while the pass runs and before every action; a guard that lost it acts no more in that pass.

`serve` keeps passing through outages (the journal's database, a provider): a failed pass is one line,
the next waits longer (bounded exponential back-off), and the first pass that works again carries out
what fell due meanwhile. The guard's clock (`now`) comes from its caller, so tests move time by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import signal
import socket
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx

from gpu_tools.budget import budgets, committed
from gpu_tools.catalog import GUARD_INTERVAL, GUARD_LAST_PASS
from gpu_tools.errors import GpuToolsError, NotFound, RedactingFilter, UnderWay, redact
from gpu_tools.gate import Approve
from gpu_tools.logs import configure_logging
from gpu_tools.models import LiveEntry, MutationResult, Plan
from gpu_tools.settings import config_file, load_settings
from gpu_tools.toolkit import Toolkit

ACTOR = "gpu-guard"
LEASE = "gpu-guard"
LEASE_SECONDS = 600.0  # the longest a pass may hold the lease before another guard may act
log = logging.getLogger("gpu_tools.guard")


class LeaseLost(Exception):
    """This guard no longer holds the journal's lease: it acts no more in this pass."""


class Guard:
    """One gpu-guard. `now` is its clock (expiries, budgets, the lease, the heartbeat): tests pass their
    own. `lease_seconds` is how long a pass holds the journal's lease between renewals: the lease is
    renewed every third of it while the pass runs, and checked (renewed) before every action."""

    def __init__(
        self,
        tk: Toolkit,
        say: Callable[[str], None] = print,
        *,
        now: Callable[[], datetime] | None = None,
        lease_seconds: float = LEASE_SECONDS,
    ) -> None:
        self.tk = tk
        self.say = say
        self.now = now or tk.now  # the toolkit's clock unless a test gives the guard its own
        self.lease_seconds = lease_seconds
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self._actions: list[dict[str, Any]] = []

    # ---- one pass -----------------------------------------------------------------------------
    async def run_once(self) -> list[dict[str, Any]]:
        """One pass; returns the actions taken (each also printed, journaled and notified). Skipped,
        with a line saying so, while another gpu-guard holds the journal's lease; cut short, with a
        line saying so, when this guard loses the lease during the pass."""
        journal = self.tk.journal
        taken, holder, until = await journal.aio.run(
            journal.acquire_lease, LEASE, self.holder, self.lease_seconds, self.now()
        )
        if not taken:
            self.say(
                f"gpu-guard: another gpu-guard ({holder}) is making a pass on this journal (lease until "
                f"{until}); this pass is skipped."
            )
            return []
        self._actions = []
        renewing = asyncio.create_task(self._keep_lease())
        try:
            await self._pass()
        except LeaseLost:
            self.say(
                "gpu-guard: this guard lost the journal's lease during its pass (another gpu-guard may be "
                f"acting); it acts no more in this pass, after {len(self._actions)} action(s)."
            )
        finally:
            renewing.cancel()
            try:
                await journal.aio.release_lease(LEASE, self.holder)
            except Exception as exc:  # the database went away: the lease runs out by itself
                log.debug("could not release the lease (%s); it runs out by itself", type(exc).__name__)
        return self._actions

    async def _keep_lease(self) -> None:
        """Renew the lease every third of its length while the pass runs (a slow provider call keeps
        it); a renewal that fails leaves the next fence check to stop the pass."""
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            try:
                if not await self._renew():
                    return
            except Exception as exc:
                log.warning("could not renew the lease (%s)", type(exc).__name__)

    async def _renew(self) -> bool:
        journal = self.tk.journal
        return await journal.aio.run(journal.renew_lease, LEASE, self.holder, self.lease_seconds, self.now())

    async def fence(self) -> None:
        """Before every action: renew the lease, or raise LeaseLost if it ran out or another guard took it."""
        if not await self._renew():
            raise LeaseLost

    async def _pass(self) -> None:
        actions = self._actions
        await self.fence()  # reconciliation writes the journal's findings
        report = await self.tk.reconcile()
        for item in report.items:
            if item.outcome != "unknown":
                actions.append(
                    await self._announce(
                        "reconciled",
                        item.outcome,
                        item.provider,
                        item.resource_id,
                        item.target,
                        f"journal #{item.journal_id}: {item.note}",
                    )
                )
        await self._expire()
        await self._budgets()
        await self.tk.journal.aio.set_meta(GUARD_LAST_PASS, self.now().isoformat(timespec="seconds"))
        await self.tk.journal.aio.set_meta(GUARD_INTERVAL, str(self.tk.settings.guard_interval))

    async def _expire(self) -> None:
        now = self.now()
        actions = self._actions
        for entry in await self.tk.journal.aio.live():
            if (
                not entry.expires_at
                or datetime.fromisoformat(entry.expires_at) > now
                or entry.resource_id is None
            ):
                continue
            if entry.expires_action == "stop" and (entry.stopped or await self._already_stopped(entry)):
                continue
            reason = f"expired at {entry.expires_at}"
            actions.append(await self._act(entry, entry.expires_action, "expired", reason))

    async def _already_stopped(self, entry: LiveEntry) -> bool:
        try:
            resource = await self.tk.adapters[entry.provider].get_resource(entry.resource_id or "")
        except GpuToolsError:
            return False
        return resource.status in ("stopped", "deleting")

    async def _budgets(self) -> None:
        settings = self.tk.settings
        now = self.now()
        found = budgets(settings, now, await self.tk.journal.aio.first_at())
        if not found:
            return
        horizon = timedelta(seconds=settings.guard_interval)
        actions = self._actions
        tried: set[tuple[str, str | None]] = set()  # acted on this pass, whether it worked or not
        for budget in found:
            before = len(actions)
            while True:
                # What still bills: the journal's own live set (a stop that worked left it; a failed
                # one did not, and keeps counting).
                live = await self.tk.journal.aio.live()
                spent = await self.tk.journal.aio.spent(budget.since, now)
                projected = spent + committed(live, now, horizon)
                if projected <= budget.limit:
                    break
                reason = f"{budget.name}: ${spent:.2f} spent, ${projected:.2f} by the next pass, over ${budget.limit:g}"
                candidates = sorted(
                    (
                        e
                        for e in live
                        if e.resource_id is not None
                        and not e.stopped
                        and (e.usd_per_hour or 0) > 0
                        and (e.provider, e.resource_id) not in tried
                    ),
                    key=lambda e: e.usd_per_hour or 0.0,
                    reverse=True,
                )
                if settings.budget_action == "warn" or not candidates:
                    failed = any(not a["ok"] for a in actions[before:])
                    if len(actions) == before or failed:  # nothing (more) it could stop: say so
                        actions.append(await self._announce("budget", "warn", None, None, None, reason))
                    break
                target = candidates[0]
                tried.add((target.provider, target.resource_id))
                actions.append(await self._act(target, settings.budget_action, "budget", reason))

    # ---- acting -------------------------------------------------------------------------------
    async def _act(self, entry: LiveEntry, action: str, event: str, reason: str) -> dict[str, Any]:
        """Stop or delete through the gate (journaled with the guard as actor); the person's approval
        is the create's plan (expiry) or their own budget settings."""
        operation = "delete_resource" if action == "delete" else "stop_resource"
        args = {"provider": entry.provider, "resource_id": entry.resource_id}
        ok = True
        await self.fence()
        try:
            result = await self.tk.call(operation, args, confirmer=Approve(), actor=ACTOR)
            if not isinstance(result, MutationResult):
                raise RuntimeError("internal error: expected isinstance(result, MutationResult)")
            outcome = f"journal #{result.journal_id}"
        except NotFound:
            await self.fence()
            await self.tk.journal.aio.run(self._record_gone, entry, operation)
            outcome = "already gone at the provider"
        except UnderWay as exc:  # the same change is under way (a person's, another server's): not resent
            # Not carried out by this pass (ok=False, so a webhook hears it): reconciliation settles the
            # first one, and a later pass acts if the resource is still there.
            ok, outcome = False, f"skipped: {exc.message}"
        except GpuToolsError as exc:
            ok, outcome = False, f"failed: {exc}"
        return await self._announce(
            event, action, entry.provider, entry.resource_id, entry.name, f"{reason}; {outcome}", ok=ok
        )

    def _record_gone(self, entry: LiveEntry, operation: str) -> None:
        """A resource deleted elsewhere leaves the journal's live set, with a row saying so."""
        plan = Plan(
            provider=entry.provider,
            operation=operation,
            action=f"{entry.resource_id} was already gone at the provider.",
            target=entry.resource_id or "",
            method="",
            path="",
            reversible=False,
            reversibility="nothing was sent",
            sandbox=self.tk.settings.sandbox,
        )
        row = self.tk.journal.record(plan, "destroy", "ok", actor=ACTOR)
        self.tk.journal.finish(
            row, "ok", resource_id=entry.resource_id, note="gone at the provider, noticed by gpu-guard"
        )

    async def _announce(
        self,
        event: str,
        action: str,
        provider: str | None,
        resource_id: str | None,
        name: str | None,
        detail: str,
        *,
        ok: bool = True,
    ) -> dict[str, Any]:
        notice = {
            "source": ACTOR,
            "ok": ok,
            "event": event,
            "action": action,
            "provider": provider,
            "resource_id": resource_id,
            "name": name,
            "detail": redact(detail),
            "at": self.now().isoformat(timespec="seconds"),
            "sandbox": self.tk.settings.sandbox,
        }
        who = (
            f"{provider} {resource_id}" + (f" ({name})" if name and name != resource_id else "")
            if provider
            else "all"
        )
        self.say(f"gpu-guard: {event}: {action} {who}: {notice['detail']}")
        url = self.tk.settings.guard_webhook_url
        if url:
            try:
                async with httpx.AsyncClient(timeout=10) as client:
                    (await client.post(url, json=notice)).raise_for_status()
            except httpx.HTTPError as exc:
                log.warning("gpu-guard: the webhook did not take the notice (%s)", type(exc).__name__)
        return notice

    def watching(self, once: bool = False) -> str:
        """What this guard watches, said at start: every `guard_interval` seconds, or one pass (`--once`)."""
        s = self.tk.settings
        configured = [p.name for p in self.tk.provider_infos() if p.configured]
        limits = [
            f"{name} ${value:g}"
            for name, value in (
                ("budget_usd_per_day", s.budget_usd_per_day),
                ("budget_usd_total", s.budget_usd_total),
                ("max_total_usd_per_hour", s.max_total_usd_per_hour),
            )
            if value is not None
        ]
        live = self.tk.journal.live()
        expiring = [e for e in live if e.expires_at]
        how = "one pass over" if once else "watching"
        when = "" if once else f" every {s.guard_interval:g} s"
        return (
            f"gpu-guard: {how} the journal {self.tk.journal.location}{when}; "
            f"providers with credentials: {', '.join(configured) or 'none'}; "
            f"{len(live)} live resource(s), {len(expiring)} with an expiry; "
            f"budgets: {', '.join(limits) or 'none'} (action: {s.budget_action}); "
            f"webhook: {'set' if s.guard_webhook_url else 'none'} (config: {config_file()})"
        )


BACKOFF_MAX = 300.0  # the longest wait between passes while they keep failing, in seconds


def backoff(interval: float, failures: int) -> float:
    """Seconds to wait after `failures` passes in a row failed: the interval, doubled per failure, up
    to BACKOFF_MAX (or 16 intervals, if that is less), never less than the interval."""
    if failures <= 0:
        return interval
    ceiling = max(interval, min(BACKOFF_MAX, 16 * interval))
    return min(ceiling, interval * 2.0 ** min(failures, 32))


def failure_line(exc: BaseException) -> str:
    """One line about a failed pass, with no secret: our own errors say what happened; anything else
    (a dropped database connection, a provider that went away) is named by its type and first line."""
    if isinstance(exc, GpuToolsError):
        text = str(exc)
    else:
        first = (str(exc).strip().splitlines() or [""])[0]
        text = f"{type(exc).__name__}" + (f": {first}" if first else "")
    return redact(" ".join(text.split()))[:500]


async def serve(guard: Guard, interval: float, stop: asyncio.Event) -> None:
    """Pass after pass until `stop` is set. A pass that fails (the journal's database or a provider
    unreachable) is said in one line and the next waits longer (bounded exponential back-off); the
    loop goes on, and the first pass after the outage carries out what fell due during it."""
    failures = 0
    while not stop.is_set():
        try:
            await guard.run_once()
        except Exception as exc:
            failures += 1
            wait = backoff(interval, failures)
            guard.say(f"gpu-guard: pass failed ({failure_line(exc)}); next try in {wait:g} s")
        else:
            if failures:
                guard.say(f"gpu-guard: passes work again after {failures} failed one(s)")
            failures = 0
        try:
            await asyncio.wait_for(stop.wait(), backoff(interval, failures))
        except TimeoutError:
            pass


def positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError("must be more than 0 seconds")
    return value


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="gpu-guard",
        description="Carry out expiries and enforce budgets on the resources gpu-tools created, with nobody present.",
    )
    parser.add_argument(
        "--once", action="store_true", help="make one pass and exit (for cron or a systemd timer)"
    )
    parser.add_argument(
        "--interval", type=positive, help="seconds between passes (default: guard_interval, 60)"
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help="serve Prometheus metrics (last pass, live resources and $/h, budgets left) on this port",
    )
    parser.add_argument(
        "--metrics-host", default="127.0.0.1", help="address of --metrics-port (default 127.0.0.1)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="gpu-guard: %(levelname)s %(message)s"
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactingFilter())
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        settings = load_settings()
    except GpuToolsError as exc:  # a bad setting: one line, exit code 2, as gpu-mcp
        print(f"gpu-guard: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    if args.interval:
        settings = settings.model_copy(update={"guard_interval": args.interval})
    try:
        tk = Toolkit(settings)
    except GpuToolsError as exc:  # the journal's database cannot be reached, psycopg is missing
        raise SystemExit(f"gpu-guard: {exc}") from None

    configure_logging("gpu-guard", settings.log_format)

    def say(text: str) -> None:
        if settings.log_format == "json":  # one JSON line on stderr, like every other log line
            logging.getLogger("gpu_tools.guard").info(text.removeprefix("gpu-guard: "))
        else:
            print(text, flush=True)

    guard = Guard(tk, say)
    print(guard.watching(once=args.once), file=sys.stderr, flush=True)
    if args.metrics_port is not None:
        from gpu_tools.metrics import Metrics, serve_metrics  # Prometheus only when asked for

        metrics = Metrics(lambda: tk.journal, settings, [p.name for p in tk.provider_infos()])
        serve_metrics(metrics, args.metrics_host, args.metrics_port)
        print(
            f"gpu-guard: metrics at http://{args.metrics_host}:{args.metrics_port}/metrics",
            file=sys.stderr,
            flush=True,
        )

    async def run() -> None:
        if args.once:
            actions = await guard.run_once()
            say(f"gpu-guard: pass done, {len(actions)} action(s).")
            return
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        print("gpu-guard: running; Ctrl-C or SIGTERM stops it.", file=sys.stderr, flush=True)
        await serve(guard, settings.guard_interval, stop)
        print("gpu-guard: stopped.", file=sys.stderr, flush=True)

    try:
        asyncio.run(run())
    finally:
        asyncio.run(tk.aclose())
        tk.close()


if __name__ == "__main__":
    main()
