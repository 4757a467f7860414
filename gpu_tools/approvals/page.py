"""The approval page: Starlette routes under `/approvals/`, served by gpu-mcp itself.

Every response carries a strict Content-Security-Policy (only our own script and style, no inline
code, `frame-ancestors 'none'`), `X-Frame-Options: DENY`, `Referrer-Policy: no-referrer` and
`Cache-Control: no-store`. Every request's Host must be one this server answers to (DNS rebinding);
every POST must come from this page (its `Origin`, or `Sec-Fetch-Site: same-origin` when a browser
sends `Origin: null` or none) and carry the session's synchronizer token (sign-in: a pre-session double-submit
token); the session cookie is `HttpOnly` and `SameSite=Strict` (`Lax` when the identity provider's
redirect back opened it: that redirect is a cross-site navigation).

The link itself never signs anyone in: a session comes from a one-time code (shown in the server's
terminal or the notebook), an HTTP bearer token of the server, an enrolled approver's passkey, or the
team's identity provider (`oidc.py`; then no code is issued). A session carries the roles of its
sign-in: approving or denying needs gpu.approve, enrolling approvers through the provider gpu.admin
(a code, an unscoped token or a passkey holds every role).
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Callable
from importlib.resources import files
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote, urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gpu_tools import budget
from gpu_tools.approvals import ADMIN, APPROVE, templates

if TYPE_CHECKING:
    from gpu_tools.approvals import Approvals, Session

log = logging.getLogger("gpu_tools.approvals")

BASE = "/approvals"
COOKIE = "gpu_approvals"
PRE_COOKIE = "gpu_approvals_pre"
FLOW_COOKIE = "gpu_approvals_flow"  # binds a sign-in through the provider to the browser that began it
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
    (b"x-content-type-options", b"nosniff"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]
STATIC = {"page.css": "text/css; charset=utf-8", "page.js": "text/javascript; charset=utf-8"}


def host_allowed(host: str, patterns: list[str]) -> bool:
    """`host` (as the Host header gives it) matches one of `patterns` (`name:port`, `name:*`, `name`)."""
    host = host.lower()
    for pattern in patterns:
        pattern = pattern.lower()
        if pattern.endswith(":*"):
            name = pattern[:-2]
            if host == name or (host.startswith(name + ":") and host[len(name) + 1 :].isdigit()):
                return True
        elif host == pattern:
            return True
    return False


class Guard:
    """Headers on every answer; the Host checked on every request; the origin of every POST."""

    def __init__(self, app: ASGIApp, approvals: Approvals, hosts: Callable[[], list[str]]) -> None:
        self.app = app
        self.approvals = approvals
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *HEADERS]
            await send(message)

        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "")
        if not host_allowed(host, self.hosts()):
            await PlainTextResponse("unknown host: this page answers only to its own address", 421)(
                scope, receive, secured
            )
            return
        if scope["method"] not in ("GET", "HEAD") and not same_origin(headers, scope.get("scheme", "http")):
            await PlainTextResponse("refused: this request did not come from the approval page", 403)(
                scope, receive, secured
            )
            return
        await self.app(scope, receive, secured)


def same_origin(headers: dict[str, str], scheme: str) -> bool:
    """A POST from our own page: its Origin is this very host; when the browser sends `Origin: null`
    (it does for a form on a page with `Referrer-Policy: no-referrer`) or none, its
    `Sec-Fetch-Site: same-origin`. Neither: refused (every current browser sends one of them)."""
    origin = headers.get("origin")
    if origin and origin != "null":
        parts = urlsplit(origin)
        forwarded = headers.get("x-forwarded-proto")
        schemes = {scheme} | ({forwarded} if forwarded else set())
        return parts.netloc.lower() == headers.get("host", "").lower() and parts.scheme in schemes
    return headers.get("sec-fetch-site") == "same-origin"


def _html(text: str, status: int = 200, **kw: Any) -> HTMLResponse:
    return HTMLResponse(text, status_code=status, **kw)


def build_app(approvals: Approvals, hosts: Callable[[], list[str]]) -> ASGIApp:
    """The page as an ASGI app whose routes start with `/approvals` (the loopback server serves it at
    its root; the HTTP transport routes `/approvals` here)."""

    async def off_loop(fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        """A journal read or write on the journal's workers, never on the server's event loop."""
        return await approvals.tk.journal.aio.run(fn, *args, **kw)

    def session_of(request: Request) -> Session | None:
        return approvals.signin.session(request.cookies.get(COOKIE))

    def who(session: Session) -> str:
        return session.user + (" (passkey)" if session.passkey else "")

    async def ask_signin(
        request: Request, *, error: str | None = None, status: int = 200, next_url: str | None = None
    ) -> Response:
        pre = request.cookies.get(PRE_COOKIE) or secrets.token_urlsafe(24)
        path = next_url or (request.url.path if request.method == "GET" else f"{BASE}/")
        enrolled = bool(await off_loop(approvals.tk.journal.approvers))
        provider = approvals.provider
        text = templates.signin(
            BASE,
            path,
            pre,
            error=error,
            passkeys=enrolled,
            provider=provider.issuer if provider is not None else None,
            # With the provider, a code is never shown; the form stays for the static tokens beside it.
            form=provider is None or bool(approvals.tokens),
        )
        response = _html(text, status)
        _cookie(response, request, PRE_COOKIE, pre, max_age=3600)
        return response

    def allowed(session: Session) -> str | None:
        """Why this person may not approve or deny (None: they may)."""
        if session.may(APPROVE):
            return None
        roles = " ".join(sorted(session.scopes or ())) or "none"
        return (
            f"{session.user} may not approve or deny: that needs the role {APPROVE} "
            f"(this sign-in holds: {roles}). Ask an administrator of your identity provider for it."
        )

    async def index(request: Request) -> Response:
        session = session_of(request)
        if session is None:
            return await ask_signin(request)
        tk = approvals.tk
        now = tk.now()
        live = await off_loop(tk.journal.live)
        budgets = await off_loop(lambda: budget.report(tk.journal, tk.settings, tk.journal.first_at(), now))
        pending = await off_loop(tk.journal.open_approvals)
        overview = templates.fleet(live, budgets)
        if session.via == "provider" and session.may(ADMIN):
            overview += templates.approvers(await off_loop(tk.journal.approvers))
        return _html(
            templates.index(pending, base=BASE, who=who(session), overview=overview, refused=allowed(session))
        )

    async def root(request: Request) -> Response:
        return RedirectResponse(f"{BASE}/", 303)

    async def show(request: Request) -> Response:
        session = session_of(request)
        if session is None:
            return await ask_signin(request)
        approval = await off_loop(approvals.tk.journal.approval, request.path_params["id"])
        if approval is None or approval.mode is None:
            return _html(
                templates.message("Not found", "No such approval.", base=BASE, who=who(session)), 404
            )
        return _html(
            templates.detail(
                approval,
                base=BASE,
                who=who(session),
                csrf=session.csrf,
                decisions=await off_loop(approvals.tk.journal.decisions, approval.id),
                quorum=approvals.tk.settings.approval_quorum,
                refused=allowed(session),
            )
        )

    async def signin(request: Request) -> Response:
        form = await request.form()
        pre = str(form.get("pre", ""))
        cookie = request.cookies.get(PRE_COOKIE, "")
        if not pre or not cookie or not hmac.compare_digest(pre, cookie):
            return await ask_signin(
                request, error="This sign-in form has expired: sign in again.", status=403
            )
        given = str(form.get("code", ""))
        # With the provider, no code is ever issued: only the static tokens beside it sign in here.
        user = approvals.signin.redeem(given) if approvals.provider is None else None
        scopes: frozenset[str] | None = None
        via = "code"
        if user is None and (found := _token_user(approvals, given)) is not None:
            (user, scopes), via = found, "token"
        if user is None:
            why = "That code is not valid (each code is used once and expires)."
            if approvals.signin.locked():
                why = "Too many wrong codes: sign-in by code is paused for a few minutes."
            return await ask_signin(request, error=why, status=403)
        response = RedirectResponse(_next(str(form.get("next", ""))), 303)
        session = approvals.signin.open(user, scopes=scopes, via=via)
        _cookie(response, request, COOKIE, session, max_age=8 * 3600)
        response.delete_cookie(PRE_COOKIE, path=BASE)
        return response

    def redirect_uri() -> str:
        return f"{approvals.origin()}{BASE}/signin/callback"

    async def provider_start(request: Request) -> Response:
        """Off to the provider's authorization endpoint, with a flow cookie binding this browser."""
        from gpu_tools.approvals.oidc import SignInRefused

        provider = approvals.provider
        if provider is None:
            return _html(templates.message("Not found", "No identity provider is set up.", base=BASE), 404)
        binding = secrets.token_urlsafe(32)
        next_url = _next(request.query_params.get("next", ""))
        try:
            url = await provider.begin(redirect_uri(), next_url, binding)
        except SignInRefused as exc:
            why = f"The identity provider cannot sign you in now: {exc}."
            return await ask_signin(request, error=why, status=502, next_url=next_url)
        response = RedirectResponse(url, 303)
        # Lax: the provider's redirect back is a cross-site top-level GET, which a Strict cookie misses.
        _cookie(response, request, FLOW_COOKIE, binding, max_age=600, samesite="lax")
        return response

    async def provider_callback(request: Request) -> Response:
        """The provider's redirect back: the code becomes a session, or the person is told why not."""
        from gpu_tools.approvals.oidc import SignInRefused

        provider = approvals.provider
        if provider is None:
            return _html(templates.message("Not found", "No identity provider is set up.", base=BASE), 404)
        query = request.query_params
        state, code = query.get("state", ""), query.get("code", "")
        if query.get("error") or not code:
            error = query.get("error") or "no code"
            why = f"The identity provider did not sign you in ({error[:60]})."
            return await ask_signin(request, error=why, status=403, next_url=f"{BASE}/")
        try:
            identity, next_url = await provider.finish(
                state=state,
                code=code,
                iss=query.get("iss"),
                binding=request.cookies.get(FLOW_COOKIE, ""),
                redirect_uri=redirect_uri(),
            )
        except SignInRefused as exc:
            log.info("approval page: a sign-in through the provider was refused: %s", exc)
            return await ask_signin(request, error=f"Not signed in: {exc}.", status=403, next_url=f"{BASE}/")
        session = approvals.signin.open(identity.user, scopes=identity.scopes, via="provider")
        response = RedirectResponse(next_url, 303)
        # Lax, so the redirect chain that started at the provider carries it; every POST still needs
        # the session's synchronizer token and a same-origin Origin / Sec-Fetch-Site.
        _cookie(response, request, COOKIE, session, max_age=8 * 3600, samesite="lax")
        response.delete_cookie(FLOW_COOKIE, path=BASE)
        return response

    async def decide(request: Request) -> Response:
        from gpu_tools.approvals import Decided, NotAllowed

        session = session_of(request)
        if session is None:
            return await ask_signin(request, error="Sign in first.", status=401)
        form = await request.form()
        token = str(form.get("csrf", ""))
        if not token or not hmac.compare_digest(token, session.csrf):
            return _html(
                templates.message(
                    "Refused",
                    "This form is not from your session: reload the page.",
                    base=BASE,
                    who=who(session),
                ),
                403,
            )
        choice = {"approve": "approved", "deny": "denied"}.get(str(form.get("decision", "")))
        if choice is None:
            return _html(templates.message("Refused", "Approve or Deny?", base=BASE, who=who(session)), 400)
        approval_id = request.path_params["id"]
        why = allowed(session)
        if why is not None:
            await off_loop(approvals.refuse, approval_id, session.user, f"{choice} refused: {why}")
            return _html(templates.message("Not allowed", why, base=BASE, who=who(session)), 403)
        how, by = "page", session.user
        if str(form.get("assertion", "")):
            try:
                by = await off_loop(
                    approvals.passkeys.verify_approval, approval_id, str(form.get("assertion"))
                )
            except ValueError as exc:
                return _html(templates.message("Refused", str(exc), base=BASE, who=who(session)), 403)
            how = "passkey"
        try:
            await off_loop(approvals.decide, approval_id, choice, by=by, how=how)
        except KeyError:
            return _html(
                templates.message("Not found", "No such approval.", base=BASE, who=who(session)), 404
            )
        except Decided as exc:
            return _html(templates.message("Already decided", str(exc), base=BASE, who=who(session)), 409)
        except NotAllowed as exc:
            return _html(templates.message("Refused", str(exc), base=BASE, who=who(session)), 403)
        return RedirectResponse(f"{BASE}/{quote(approval_id)}", 303)

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC:
            return PlainTextResponse("not found", 404)
        text = (files("gpu_tools.approvals") / "static" / name).read_text()
        return Response(text, media_type=STATIC[name])

    routes = [
        Route("/", root),
        Route(BASE, root),
        Route(f"{BASE}/", index),
        Route(f"{BASE}/static/{{name}}", static),
        Route(f"{BASE}/signin", signin, methods=["POST"]),
        Route(f"{BASE}/signin/provider", provider_start),
        Route(f"{BASE}/signin/callback", provider_callback),
        Route(f"{BASE}/{{id:str}}", show),
        Route(f"{BASE}/{{id:str}}/decide", decide, methods=["POST"]),
    ]
    routes[3:3] = approvals.passkeys.routes(BASE, session_of)
    return Guard(Starlette(routes=routes), approvals, hosts)


def _next(url: str) -> str:
    """Where to go after signing in: a path of this page only (never another site)."""
    if not url.startswith(f"{BASE}/") or "//" in url[1:] or "\\" in url:
        return f"{BASE}/"
    return url


def _token_user(approvals: Approvals, given: Any) -> tuple[str, frozenset[str] | None] | None:
    """The user an HTTP bearer token stands for (its name, or the local user for the one-user token)
    and its scopes (None: a token configured without scopes holds every role)."""
    if not isinstance(given, str) or not given:
        return None
    from gpu_tools.approvals import LOCAL_USER

    found: tuple[str, frozenset[str] | None] | None = None
    for token, user in approvals.tokens.items():  # no early exit: the time taken names no token
        if hmac.compare_digest(token.encode(), given.strip().encode()):
            name, scopes = user if isinstance(user, tuple) else (user, None)
            found = (name or LOCAL_USER, frozenset(scopes) if scopes is not None else None)
    return found


def _cookie(
    response: Response,
    request: Request,
    name: str,
    value: str,
    *,
    max_age: int,
    samesite: Literal["strict", "lax"] = "strict",
) -> None:
    forwarded = request.headers.get("x-forwarded-proto")
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=BASE,
        httponly=True,
        samesite=samesite,
        secure=request.url.scheme == "https" or forwarded == "https",
    )


def with_page(app: ASGIApp, approvals: Approvals, hosts: list[str]) -> ASGIApp:
    """`app` (the MCP server's HTTP app, behind its bearer-token check) with the approval page at
    `/approvals/`: a browser carries no bearer token, so the page signs its visitors in itself."""
    page = build_app(approvals, lambda: hosts)

    async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and (path == BASE or path.startswith(BASE + "/")):
            await page(scope, receive, send)
        else:
            await app(scope, receive, send)

    return dispatch
