"""The approval page's HTML: `string.Template`s whose every value is escaped by `esc` here, never by
the caller. No inline script or style (the Content-Security-Policy forbids both): the look is
`static/page.css`, the behaviour (passkeys) `static/page.js`."""

from __future__ import annotations

import json
from html import escape
from string import Template
from typing import Any
from urllib.parse import urlencode

from gpu_tools.journal import Approval
from gpu_tools.models import plain

PAGE = Template("""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<meta name="referrer" content="no-referrer">
<title>$title</title>
<link rel="stylesheet" href="$base/static/page.css">
<script src="$base/static/page.js" defer></script>
</head>
<body>
<header><a class="brand" href="$base/">gpu-tools approvals</a>$who</header>
<main>
$body
</main>
</body>
</html>
""")


def esc(value: Any) -> str:
    if value is None:
        return "&mdash;"
    if not isinstance(value, str):
        value = json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else str(value)
    return escape(value, quote=True)


def seen(value: Any) -> str:
    """`esc` of a name or text an agent or a provider chose: a line break or bidi override in it is
    shown as an escape (`plain`), never obeyed."""
    return esc(plain(value) if isinstance(value, str) else value)


def page(title: str, body: str, *, base: str, who: str | None = None) -> str:
    signed = f'<span class="who">signed in: {esc(who)}</span>' if who else ""
    return PAGE.substitute(title=esc(title), body=body, base=esc(base), who=signed)


def signin(
    base: str,
    next_url: str,
    pre: str,
    *,
    error: str | None = None,
    passkeys: bool = False,
    provider: str | None = None,
    form: bool = True,
) -> str:
    """The sign-in page: the team's identity provider first where there is one, then the one-time code
    or bearer token form (`form`), then the passkey."""
    problem = f'<p class="error" role="alert">{esc(error)}</p>' if error else ""
    parts = []
    if provider:
        start = f"{base}/signin/provider?{urlencode({'next': next_url})}"
        parts.append(
            f'<div class="buttons"><a class="button primary" id="provider-signin" href="{esc(start)}">'
            f"Sign in with your identity provider</a></div>"
            f'<p class="fine">{esc(provider)}: approving needs the role <code>gpu.approve</code>.</p>'
        )
    if form:
        label = "Bearer token" if provider else "One-time code or token"
        parts.append(f"""<form method="post" action="{esc(base)}/signin" class="signin">
<input type="hidden" name="pre" value="{esc(pre)}">
<input type="hidden" name="next" value="{esc(next_url)}">
<label for="code">{label}</label>
<input id="code" name="code" autocomplete="one-time-code" autocapitalize="characters" spellcheck="false" required>
<button type="submit" class="{"secondary" if provider else "primary"}">Sign in</button>
</form>""")
    if passkeys:
        parts.append(
            '<button type="button" class="secondary" id="passkey-signin" '
            f'data-options="{esc(base)}/passkey/signin-options" data-verify="{esc(base)}/passkey/signin" '
            f'data-next="{esc(next_url)}">Sign in with a passkey</button>'
        )
    intro = (
        "This link alone approves nothing. Sign in with your team's identity provider"
        + (", or with a bearer token of this HTTP server." if form else ".")
        if provider
        else "This link alone approves nothing. Type the one-time code gpu-tools showed you where you "
        "started it (the server's terminal, your MCP client's server log, or the notebook cell), or the "
        "bearer token of this HTTP server."
    )
    return page(
        "Sign in to approve",
        f"""<section class="card">
<p class="status pending" id="signin-required">Sign-in required</p>
<h1>Sign in to approve</h1>
<p>{esc(intro)}</p>
{problem}
{'<p class="or">or</p>'.join(parts)}
</section>""",
        base=base,
    )


def _money(value: Any) -> str:
    return "unknown" if value is None else f"${float(value):,.2f}"


def status_of(approval: Approval) -> tuple[str, str]:
    """(css class, sentence) of where an approval stands."""
    if approval.refused is not None:  # closed by a refusal: the page's decision first, if any
        why = approval.refused
        if approval.status == "denied":
            decided = f"Denied by {approval.decided_by} at {approval.decided_at}."
            extra = "" if why.startswith("denied on the approval page") else f" The call was refused: {why}."
            return "denied", f"{decided}{extra} Nothing was sent."
        if approval.status == "approved":
            return "denied", (
                f"Approved by {approval.decided_by} at {approval.decided_at}, then refused when the call came "
                f"back: {why}. Nothing was sent."
            )
        return "denied", f"Refused at {approval.consumed_at}: {why}. Nothing was sent."
    if approval.consumed_at is not None:
        return "sent", f"Approved by {approval.decided_by or 'the form'} and sent at {approval.consumed_at}."
    if approval.status == "approved":
        how = approval.decided_how or "page"
        return "approved", f"Approved by {approval.decided_by} ({how}) at {approval.decided_at}."
    if approval.status == "denied":
        return "denied", f"Denied by {approval.decided_by} at {approval.decided_at}. Nothing was sent."
    if approval.expired:
        return "expired", f"Expired at {approval.expiry.isoformat(timespec='seconds')}. Nothing was sent."
    return "pending", "Waiting for your decision."


def _rows(pairs: list[tuple[str, str]]) -> str:
    return "\n".join(f'<tr><th scope="row">{esc(k)}</th><td>{v}</td></tr>' for k, v in pairs)


def detail(
    approval: Approval,
    *,
    base: str,
    who: str,
    csrf: str,
    decisions: list[dict[str, Any]],
    quorum: int,
    refused: str | None = None,
) -> str:
    """One approval, whole; `refused`: why this signed-in person may not decide it (no buttons then)."""
    view = approval.view or {}
    plan = view.get("plan", {})
    state, sentence = status_of(approval)
    if state == "pending" and refused:
        sentence = "Waiting for an approver's decision."
    expires = "never (no expiry)"
    if plan.get("expires_at"):
        then = "stopped" if plan.get("expires_action") == "stop" else "deleted"
        expires = f"{plan['expires_at']}, then {then} by gpu-guard"
    cost = _money(plan.get("usd_per_hour")) + " per hour"
    if plan.get("price_source"):
        cost += f" ({plan['price_source']})"
    pairs = [
        ("Provider", esc(plan.get("provider"))),
        ("Operation", f"<code>{esc(plan.get('operation'))}</code>"),
        ("Target", seen(plan.get("target"))),
        ("Request", f"<code>{esc(plan.get('method'))} {esc(plan.get('path'))}</code>"),
        ("Cost", seen(cost)),
        ("At maximum scale", esc(_money(plan.get("usd_per_hour_max")) + " per hour")),
        ("GPUs", seen(f"{plan.get('gpus')} x {plan.get('gpu_name')}" if plan.get("gpus") else None)),
        ("Expires", esc(expires)),
        (
            "Reversible",
            seen(("yes: " if plan.get("reversible") else "NO: ") + str(plan.get("reversibility"))),
        ),
        ("Asked by", seen(approval.asked_by or "the local user")),
        ("Client", seen(approval.client)),
        ("This approval expires", esc(approval.expiry.isoformat(timespec="seconds"))),
    ]
    for line in view.get("budgets", []):
        name = "Daily budget" if line["name"] == "budget_usd_per_day" else "Total budget"
        left = (
            f"{_money(line['left_after'])} left after this plan (now {_money(line['left_now'])} "
            f"of {_money(line['limit'])}; this plan {_money(line['this_plan'])})"
        )
        pairs.append((name, esc(left if line["cost_known"] else "unknown: this plan's cost is unknown")))
    arguments = _rows([(k, f"<code>{seen(v)}</code>") for k, v in sorted(view.get("arguments", {}).items())])
    body = esc(json.dumps(plan.get("body"), indent=2, sort_keys=True)) if plan.get("body") is not None else ""
    warnings = "".join(f"<li>{seen(w)}</li>" for w in plan.get("warnings", []))
    steps = "".join(
        f"<li>{seen(s.get('action'))} <code>{esc(s.get('method'))} {esc(s.get('path'))}</code></li>"
        for s in plan.get("steps", [])
    )
    sandbox = '<p class="badge sandbox">SANDBOX: nothing real is created</p>' if plan.get("sandbox") else ""
    given = "".join(
        f"<li>{esc(d['approver'])}: {esc(d['decision'])} ({esc(d['how'])}, {esc(d['at'])})</li>"
        for d in decisions
    )
    actions = ""
    if state == "pending" and refused:
        # The buttons are shown, disabled, so the person sees what they may not do (the server refuses
        # the POST anyway: it checks the role, not the button).
        actions = f"""<form method="post" action="{esc(base)}/{esc(approval.id)}/decide" class="decide">
<input type="hidden" name="csrf" value="{esc(csrf)}">
<div class="buttons">
<button type="submit" name="decision" value="approve" class="primary" disabled>Approve and send</button>
<button type="submit" name="decision" value="deny" class="danger" disabled>Deny</button>
</div>
</form>"""
    elif state == "pending":
        needs = (
            '<p class="note">This approval needs an enrolled approver\'s passkey: Approve asks for it.</p>'
            if approval.mode == "passkey"
            else ""
        )
        quorum_note = f'<p class="note">{quorum} distinct approvers must approve.</p>' if quorum > 1 else ""
        passkey_attr = (
            f' data-passkey="{esc(base)}/{esc(approval.id)}/passkey-options"'
            if approval.mode == "passkey"
            else ""
        )
        actions = f"""<form method="post" action="{esc(base)}/{esc(approval.id)}/decide" class="decide"{passkey_attr}>
<input type="hidden" name="csrf" value="{esc(csrf)}">
<input type="hidden" name="assertion" value="">
{needs}{quorum_note}
<div class="buttons">
<button type="submit" name="decision" value="approve" class="primary">Approve and send</button>
<button type="submit" name="decision" value="deny" class="danger">Deny</button>
</div>
</form>"""
    return page(
        f"Approve: {plain(str(plan.get('action', approval.id)))}",
        f"""<section class="card">
<p class="status {state}" id="status">{esc(sentence)}</p>
{f'<p class="error" role="alert" id="not-allowed">{esc(refused)}</p>' if refused and state == "pending" else ""}
{sandbox}
<h1>{seen(plan.get("action"))}</h1>
<p class="price"><span class="amount">{esc(_money(plan.get("usd_per_hour_max") or plan.get("usd_per_hour")))}</span> per hour at most</p>
<table class="plan">{_rows(pairs)}</table>
{f"<h2>Steps</h2><ol>{steps}</ol>" if steps else ""}
<h2>Arguments</h2>
<table class="args">{arguments}</table>
{f"<h2>Request body</h2><pre>{body}</pre>" if body else ""}
{f'<h2>Warnings</h2><ul class="warnings">{warnings}</ul>' if warnings else ""}
{f"<h2>Decisions</h2><ul>{given}</ul>" if given else ""}
<p class="fine">Approval {esc(approval.id)}: bound to exactly this plan (digest {esc(approval.digest[:12])}...);
it sends its request once. A changed price or plan needs a new approval.</p>
{actions}
</section>""",
        base=base,
        who=who,
    )


def fleet(live: list[Any], budgets: list[Any]) -> str:
    """What a signed-in approver sees under the pending list (read-only): what this tool keeps
    running, what it costs, the budgets, and the next expiries."""
    rows = "".join(
        f"<tr><td>{esc(e.provider)}</td><td>{seen(e.name or e.resource_id or 'unknown (not reconciled)')}</td>"
        f"<td>{esc('stopped' if e.stopped else _money(e.usd_per_hour) + '/h')}</td><td>{esc(e.expires_at)}</td></tr>"
        for e in sorted(live, key=lambda e: e.expires_at or "~")
    )
    total = sum((e.usd_per_hour or 0.0) for e in live if not e.stopped)
    table = (
        f'<table class="fleet"><tr><th scope="col">Provider</th><th scope="col">Resource</th>'
        f'<th scope="col">Cost</th><th scope="col">Expires</th></tr>{rows}</table>'
        if live
        else '<p class="empty">Nothing this tool created is running.</p>'
    )
    lines = "".join(
        f"<li>{esc('Daily' if b.name == 'budget_usd_per_day' else 'Total')} budget {esc(_money(b.limit_usd))}: "
        f"{esc(_money(b.spent_usd))} spent, {esc(_money(b.committed_usd))} committed, "
        f"<strong>{esc(_money(b.left_usd))} left</strong></li>"
        for b in budgets
    )
    return f"<h2>Running now: {esc(_money(total))} per hour</h2>{table}" + (
        f"<h2>Budgets</h2><ul>{lines}</ul>" if lines else ""
    )


def approvers(rows: list[dict[str, Any]]) -> str:
    """The enrolled approvers (for a signed-in gpu.admin; read-only: `gpu-mcp approvers` manages them)."""
    items = "".join(
        f'<li>{esc(r.get("name"))} <span class="meta">enrolled {esc(r.get("created_at"))}</span></li>'
        for r in rows
    )
    body = f'<ul class="approvers">{items}</ul>' if items else '<p class="empty">No passkey is enrolled.</p>'
    return f'<h2 id="approvers">Approvers (passkeys)</h2>{body}'


def index(
    approvals: list[Approval], *, base: str, who: str, overview: str = "", refused: str | None = None
) -> str:
    if not approvals:
        items = '<p class="empty">Nothing is waiting for approval.</p>'
    else:
        rows = []
        for a in approvals:
            plan = (a.view or {}).get("plan", {})
            rows.append(
                f'<li><a href="{esc(base)}/{esc(a.id)}"><span class="what">{seen(plan.get("action") or a.id)}</span>'
                f'<span class="meta">{esc(plan.get("provider"))} &middot; '
                f"{esc(_money(plan.get('usd_per_hour_max') or plan.get('usd_per_hour')))}/h &middot; "
                f"asked by {seen(a.asked_by or 'the local user')} &middot; expires "
                f"{esc(a.expiry.isoformat(timespec='seconds'))}</span></a></li>"
            )
        items = f'<ul class="pending">{"".join(rows)}</ul>'
    return page(
        "Pending approvals",
        '<section class="card"><h1>Pending approvals</h1>'
        + (f'<p class="error" role="alert" id="not-allowed">{esc(refused)}</p>' if refused else "")
        + f"{items}{overview}</section>",
        base=base,
        who=who,
    )


def message(title: str, text: str, *, base: str, who: str | None = None) -> str:
    return page(
        title,
        f'<section class="card"><h1>{esc(title)}</h1><p>{esc(text)}</p>'
        f'<p><a href="{esc(base)}/">All pending approvals</a></p></section>',
        base=base,
        who=who,
    )


def enroll(name: str, token: str, *, base: str) -> str:
    return page(
        f"Enroll a passkey for {name}",
        f"""<section class="card">
<p class="status pending" id="status">Not enrolled yet.</p>
<h1>Enroll a passkey for {esc(name)}</h1>
<p>This passkey will approve gpu-tools changes as <strong>{esc(name)}</strong>. Your device asks for your
PIN, fingerprint or face: approvals need it every time.</p>
<div class="buttons"><button type="button" class="primary" id="passkey-enroll"
 data-options="{esc(base)}/enroll/{esc(token)}/options" data-verify="{esc(base)}/enroll/{esc(token)}">Enroll a passkey</button></div>
</section>""",
        base=base,
    )
