"""Approvals a person gives in person: records, the approval page, sign-in.

An approval is a journal row (`Journal.new_approval`) bound to the digest of one plan and to the user
who asked; it expires after `approval_ttl` and sends its request once (the gate consumes it with the
intent row). The policy (`approval`: form, page, passkey; `approval_above_usd_per_hour`) says how a
person gives it:

- *form*: the MCP client's confirmation form (or the magic's y/N); a client that cannot show one gets
  the page instead, so every client can create;
- *page*: this package's approval page, served by gpu-mcp itself (a loopback server for stdio, the
  HTTP server's `/approvals/` for teams). The link alone approves nothing: the person signs in there
  with a one-time code shown only where they see it (the server's terminal, the notebook cell) or a
  bearer token of the HTTP server, and Approve / Deny are CSRF-protected POSTs;
- *passkey*: the page and a WebAuthn assertion with user verification by an enrolled approver.

Every decision is a row of `approval_decisions` (who, how, when); an approval is decided once
(`approval_quorum` distinct approvers; with `approval_separate_requester` the requester's own yes
does not count). This module holds the records logic; `page.py` the Starlette routes,
`templates.py` the HTML, `server.py` the loopback server.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import secrets
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from gpu_tools import budget
from gpu_tools.durations import parse_duration
from gpu_tools.errors import redact_value
from gpu_tools.journal import Approval
from gpu_tools.models import ApprovalLink, Plan

if TYPE_CHECKING:
    from gpu_tools.approvals.oidc import ProviderSignIn
    from gpu_tools.approvals.passkeys import Passkeys
    from gpu_tools.context import Context

log = logging.getLogger("gpu_tools.approvals")

LOCAL_USER = "local user"  # who signs in with a one-time code on a one-user (stdio, notebook) server
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: read off a terminal and typed
SESSION_TTL = timedelta(hours=8)
MAX_FAILURES = 10  # wrong sign-in codes in a row before codes are refused for LOCKOUT
LOCKOUT = timedelta(minutes=5)
POLL = 0.2  # seconds between reads of the journal while a call waits for a decision

PENDING = (
    "Nothing was sent yet: a person must approve this plan on the approval page. Show the user this link "
    "in full ({url}); once they have approved it, call this tool again with exactly the same arguments "
    "(calling again before then returns this same approval)."
)

Progress = Callable[[float, float | None, str], Awaitable[None]]


class Decided(Exception):
    """A decision on an approval that is already decided (or was already answered by this approver)."""


class NotAllowed(Exception):
    """This approver may not decide this approval (their own plan with separation, passkey needed)."""


def plan_cost(plan: Plan) -> float | None:
    return plan.usd_per_hour_max if plan.usd_per_hour_max is not None else plan.usd_per_hour


def mode_for(settings: Any, plan: Plan, effect: str) -> str:
    """How this plan must be approved: the `approval` policy, except that a plan costing less per
    hour than `approval_above_usd_per_hour` may use the form (a delete or a stop adds nothing per
    hour; an unknown cost is never under the threshold)."""
    threshold = settings.approval_above_usd_per_hour
    if settings.approval != "form" and threshold is not None:
        cost = 0.0 if effect == "destroy" or plan.operation == "stop_resource" else plan_cost(plan)
        if cost is not None and cost < threshold:
            return "form"
    return str(settings.approval)


def plan_view(tk: Context, plan: Plan, arguments: dict[str, Any]) -> dict[str, Any]:
    """Everything the page shows about a plan, as the gate built it (secrets masked): what is sent,
    what it costs, until when, and what each budget has left after it."""
    now = tk.now()
    cost = plan_cost(plan)
    budgets = []
    for found in budget.budgets(tk.settings, now, tk.journal.first_at()):
        spent = tk.journal.spent(found.since, now)
        committed = budget.committed(tk.journal.live(), now)
        mine = (cost or 0.0) * budget.hours_left(plan.expires_at, now)
        budgets.append(
            {
                "name": found.name,
                "limit": found.limit,
                "left_now": round(found.limit - spent - committed, 2),
                "left_after": round(found.limit - spent - committed - mine, 2),
                "this_plan": round(mine, 2),
                "cost_known": cost is not None,
            }
        )
    return redact_value(
        {
            "plan": plan.model_dump(mode="json"),
            "arguments": {k: v for k, v in arguments.items() if k != "dry_run"},
            "budgets": budgets,
        }
    )


APPROVE, ADMIN = "gpu.approve", "gpu.admin"  # the roles the page checks (gpu_tools.settings.SCOPES)


@dataclass
class Session:
    user: str
    csrf: str
    expires: datetime
    passkey: str | None = None  # the approver whose passkey signed this session in
    # The roles the sign-in carried: None where the way of signing in names no roles (a one-time code
    # shown to the person at the server, a static token without scopes, an enrolled passkey): every role.
    scopes: frozenset[str] | None = None
    via: str = "code"  # code, token, passkey, provider

    def may(self, role: str) -> bool:
        return self.scopes is None or role in self.scopes


@dataclass
class SignIn:
    """One-time sign-in codes and the sessions they open (this process's memory: a code is shown
    by this process, and a session lives as long as it does)."""

    codes: dict[str, tuple[str, datetime]] = field(default_factory=dict)  # sha256(code) -> user, expiry
    sessions: dict[str, Session] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    failures: int = 0  # wrong codes in a row
    locked_until: datetime | None = None
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)  # the toolkit's `now` (tests move it)

    def issue(self, user: str = LOCAL_USER, ttl: timedelta = timedelta(minutes=10)) -> str:
        raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(8))
        code = f"{raw[:4]}-{raw[4:]}"
        with self.lock:
            self.codes[_digest(code)] = (user, self.clock() + ttl)
        return code

    def redeem(self, code: str) -> str | None:
        """The user a code signs in (and the code is gone), or None. After MAX_FAILURES wrong codes
        in a row no code is taken for LOCKOUT (guessing one of 31^8 codes then takes centuries)."""
        normalized = code.strip().upper().replace(" ", "")
        if len(normalized) == 8:
            normalized = f"{normalized[:4]}-{normalized[4:]}"
        now = self.clock()
        with self.lock:
            if self.locked_until is not None and now < self.locked_until:
                return None
            hit = self.codes.pop(_digest(normalized), None)
            if hit is None or hit[1] < now:
                self.failures += 1
                if self.failures >= MAX_FAILURES:
                    self.failures, self.locked_until = 0, now + LOCKOUT
                return None
            self.failures = 0
        return hit[0]

    def locked(self) -> bool:
        return self.locked_until is not None and self.clock() < self.locked_until

    def open(
        self,
        user: str,
        passkey: str | None = None,
        *,
        scopes: frozenset[str] | None = None,
        via: str = "code",
    ) -> str:
        token = secrets.token_urlsafe(32)
        with self.lock:
            now = self.clock()
            self.sessions = {k: v for k, v in self.sessions.items() if v.expires > now}
            self.sessions[token] = Session(
                user, secrets.token_urlsafe(32), now + SESSION_TTL, passkey, scopes, via
            )
        return token

    def session(self, token: str | None) -> Session | None:
        if not token:
            return None
        with self.lock:
            found = self.sessions.get(token)
        if found is None or found.expires < self.clock():
            return None
        return found


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def desktop() -> bool:
    """Whether a browser can be opened for the person at this machine."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


class Approvals:
    """The approvals of one toolkit: where the page is, sign-in, waiting for and recording decisions."""

    def __init__(self, tk: Context) -> None:
        self.tk = tk
        self.signin = SignIn(clock=lambda: tk.now())
        self.base_url: str | None = None  # where the page is served (set by whoever serves it)
        # HTTP bearer tokens -> user (or (user, scopes)): they sign in on a team page
        self.tokens: dict[str, Any] = {}
        self.provider: ProviderSignIn | None = None  # sign-in through oauth_issuer (set by the HTTP front)
        self.loopback: Any = None  # the stdio server's own page server, started on first need
        self.say: Callable[[str], None] = lambda text: print(text, file=sys.stderr, flush=True)
        self._announced: set[str] = set()
        self._posts: list[threading.Thread] = []  # webhook notices on their way (close waits for them)
        self._lock = threading.Lock()

    @cached_property
    def passkeys(self) -> Passkeys:
        """WebAuthn for this page (imported when the page first needs it, not by every process)."""
        from gpu_tools.approvals.passkeys import Passkeys

        return Passkeys(self)

    # ---- policy -------------------------------------------------------------------------------
    def mode_for(self, plan: Plan, effect: str) -> str:
        return mode_for(self.tk.settings, plan, effect)

    def ttl(self) -> timedelta:
        return parse_duration(self.tk.settings.approval_ttl)

    def wait_seconds(self) -> float:
        return parse_duration(self.tk.settings.approval_wait).total_seconds()

    def policy_text(self) -> str:
        s = self.tk.settings
        text = {
            "form": "form: the client's confirmation form where it can show one, the approval page elsewhere",
            "page": "page: every change is approved on the approval page; a form's yes is not enough",
            "passkey": "passkey: every change is approved on the approval page with an enrolled passkey",
        }[s.approval]
        if s.approval != "form" and s.approval_above_usd_per_hour is not None:
            text += f" (plans under ${s.approval_above_usd_per_hour:g}/hour may use the form)"
        if s.approval_quorum > 1:
            text += f"; {s.approval_quorum} distinct approvers"
        if s.approval_separate_requester:
            text += "; the requester's own approval does not count"
        return text

    # ---- the page -----------------------------------------------------------------------------
    def page_url(self) -> str:
        """The page's base URL, starting this process's loopback page server if nothing serves it."""
        with self._lock:
            if self.base_url is None:
                from gpu_tools.approvals.server import LoopbackPage

                self.loopback = LoopbackPage(self, port=self.tk.settings.approval_port).start()
                self.base_url = self.loopback.url
            return self.base_url

    def link(self, approval_id: str) -> str:
        return f"{self.page_url()}/approvals/{approval_id}"

    def origin(self) -> str:
        return self.tk.settings.approval_origin or self.page_url()

    def pending_link(self, approval: Approval) -> ApprovalLink:
        url = self.link(approval.id)
        return ApprovalLink(
            id=approval.id,
            url=url,
            expires_at=approval.expiry.isoformat(timespec="seconds"),
            via="passkey" if approval.mode == "passkey" else "page",
            next_step=PENDING.format(url=url),
        )

    def announce(self, approval: Approval, *, show: Callable[[str], None] | None = None) -> str | None:
        """Once per approval: tell the person where to approve (with a one-time sign-in code, shown
        only where they see it: `show`, else this server's stderr), post it to the webhook, and open
        the browser where that is wanted. Returns the code ("" on a team's server, where approvers
        sign in with their own token or passkey; None when already announced)."""
        with self._lock:
            if approval.id in self._announced:
                return None
            self._announced.add(approval.id)
        url = self.link(approval.id)
        # A team's server (named users) prints no code: its log is the operator's, not the approver's;
        # approvers sign in with their own token or passkey, which name them.
        team = self.provider is not None or any(user for user in self.tokens.values())
        code = "" if team else self.signin.issue(ttl=self.ttl())
        how = f"sign in with the one-time code {code}" if code else "sign in there"
        line = (
            f"approval {approval.id} needs you: open {url} and {how} "
            f"(expires {approval.expiry.isoformat(timespec='seconds')})"
        )
        (show or (lambda text: self.say(f"gpu-mcp: {text}")))(line)
        self.notify("approval_pending", {"approval": approval.id, "url": url, "message": approval.message})
        wanted = self.tk.settings.approval_open_browser
        if (wanted is None and desktop() and self.loopback is not None) or wanted is True:
            import webbrowser  # imported when a browser is opened: not at start-up

            try:
                webbrowser.open(url)
            except webbrowser.Error:
                pass
        return code

    def notify(self, event: str, detail: dict[str, Any], *, background: bool = True) -> None:
        """POST a notice to `guard_webhook_url` (in the background unless a short-lived command
        sends it; a failure is one log line)."""
        url = self.tk.settings.guard_webhook_url
        if not url:
            return
        notice = {
            "event": event,
            "at": self.tk.now().isoformat(timespec="seconds"),
            **redact_value(detail),
        }

        def post() -> None:
            import httpx  # imported when a notice is sent: not at start-up

            try:
                httpx.post(url, json=notice, timeout=10).raise_for_status()
            except httpx.HTTPError as exc:
                log.warning("approvals: the webhook did not take the notice (%s)", type(exc).__name__)

        if background:
            thread = threading.Thread(target=post, name="gpu-approvals-webhook", daemon=True)
            thread.start()
            self._posts = [t for t in self._posts if t.is_alive()] + [thread]
        else:
            post()

    # ---- decisions ----------------------------------------------------------------------------
    def decide(self, approval_id: str, decision: str, *, by: str, how: str) -> Approval:
        """Record `by`'s decision (`how`: page or passkey). Raises Decided (HTTP 409) when the
        approval is already decided, used or expired, NotAllowed when `by` may not decide it."""
        s = self.tk.settings
        approval = self.tk.journal.approval(approval_id)
        if approval is None:
            raise KeyError(approval_id)
        if approval.status is not None or approval.consumed_at is not None:
            used = "refused" if approval.refused is not None else "used"
            raise Decided(f"approval {approval_id} was already decided ({approval.status or used}).")
        if approval.expired:
            raise Decided(
                f"approval {approval_id} expired at {approval.expiry.isoformat(timespec='seconds')}."
            )
        if decision == "approved" and approval.mode == "passkey" and how != "passkey":
            raise NotAllowed("this approval needs an enrolled approver's passkey.")
        if (
            decision == "approved"
            and s.approval_separate_requester
            and approval.asked_by is not None
            and approval.asked_by == by
        ):
            raise NotAllowed("you asked for this plan: another approver must approve it.")
        decided, recorded = self.tk.journal.decide(
            approval_id, decision, by=by, how=how, quorum=s.approval_quorum
        )
        if not recorded:
            raise Decided(f"approval {approval_id} was already decided, or {by} already answered it.")
        if decided.status is not None:
            self.notify(
                f"approval_{decided.status}",
                {"approval": approval_id, "by": decided.decided_by, "how": how},
            )
        return decided

    def refuse(self, approval_id: str, by: str, reason: str) -> None:
        """Journal a decision the page refused before recording it (a user without the role
        gpu.approve): a `refused` row naming who tried, bound to the approval, nothing sent."""
        approval = self.tk.journal.approval(approval_id)
        if approval is None:
            return
        try:
            plan = Plan.model_validate((approval.view or {}).get("plan") or {})
        except ValueError:  # an approval without the page's view (a form's): nothing to show either
            return
        effect = "create" if plan.kind is not None else "update"
        self.tk.journal.record(plan, effect, "refused", error=f"approval {approval_id}: {reason}", actor=by)

    async def wait(self, approval_id: str, seconds: float, progress: Progress | None = None) -> Approval:
        """The approval once decided (or used, or expired), or as it is after `seconds`."""
        deadline = time.monotonic() + seconds
        last_report = -1.0
        while True:
            approval = await self.tk.journal.aio.approval(approval_id)
            if approval is None:
                raise RuntimeError("internal error: expected approval is not None")
            left = deadline - time.monotonic()
            if (
                approval.status is not None
                or approval.consumed_at is not None
                or approval.expired
                or left <= 0
            ):
                return approval
            waited = seconds - left
            if progress is not None and waited - last_report >= 1.0:
                last_report = waited
                await progress(
                    waited, seconds, f"waiting for a person to approve on the page ({approval_id})"
                )
            await asyncio.sleep(min(POLL, left))

    def close(self) -> None:
        """Stop the loopback page (its requests in flight finish first), then let the webhook
        notices on their way arrive."""
        if self.loopback is not None:
            self.loopback.stop()
            self.loopback = None
            self.base_url = None
        for thread in self._posts:
            thread.join(timeout=10)
