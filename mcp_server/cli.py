"""`gpu-mcp`: the MCP server, over stdio (default) or streamable HTTP.

`--sandbox` starts the provider emulator in-process on a free loopback port and points every
adapter at it, so everything works end to end without an account.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import secrets
import sys
import tempfile
from pathlib import Path
from typing import Any, NoReturn

from mcp.server.transport_security import TransportSecuritySettings

from gpu_tools.errors import GpuToolsError, RedactingFilter, register_secret
from gpu_tools.sandbox import SandboxServer
from gpu_tools.settings import Settings, config_file, http_token_file, load_settings
from mcp_server import build_server
from mcp_server.auth import BearerAuth, SessionRefusals, StaticUser
from mcp_server.observe import configure_logging, install_observer, readiness
from mcp_server.web import (
    Front,
    health_routes,
    metrics_route,
    protected_resource_routes,
    resource_metadata_url,
)

__all__ = ["BearerAuth", "main", "transport_security"]

LOOPBACK = ("127.0.0.1", "localhost", "[::1]")


def transport_security(host: str, port: int, extra_hosts: list[str]) -> TransportSecuritySettings:
    """Host and Origin checks for every bind address (DNS-rebinding protection): loopback names, the
    address bound when it is a specific one, and the names in `http_allowed_hosts`."""
    names = list(LOOPBACK)
    if host not in ("0.0.0.0", "::", "") and host not in names:
        names.append(f"[{host}]" if ":" in host else host)
    hosts: list[str] = []
    for name in [*names, *extra_hosts]:
        has_port = "]:" in name if name.startswith("[") else ":" in name
        hosts += [name] if has_port else [name, f"{name}:*"]
    origins = [f"{scheme}://{h}" for h in hosts for scheme in ("http", "https")]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=list(dict.fromkeys(hosts)),
        allowed_origins=list(dict.fromkeys(origins)),
    )


def is_loopback(host: str) -> bool:
    return host in (*LOOPBACK, "::1")


def refuse(message: str) -> NoReturn:
    """A configuration that would fail open: one line on stderr, exit code 2, nothing served."""
    print(f"gpu-mcp: {message}", file=sys.stderr, flush=True)
    raise SystemExit(2)


def write_private(path: Path, text: str) -> Path:
    """Write `text` to `path` readable and writable by this user only (0600), replacing it atomically,
    in a directory others cannot list (0700 when made here)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # made 0600
    try:
        with os.fdopen(fd, "w") as file:
            file.write(text)
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="gpu-mcp", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sandbox", action="store_true", help="serve against the built-in provider sandbox")
    parser.add_argument("--read-only", action="store_true", help="register no tool that changes anything")
    parser.add_argument(
        "--toolsets",
        metavar="SETS",
        help="comma-separated tool sets to list, e.g. default,sesterce_admin or all (default: reads, "
        "lifecycle and each configured provider's set; list_providers names every set)",
    )
    parser.add_argument("--transport", choices=("stdio", "http"), default="stdio")
    parser.add_argument("--host", default="127.0.0.1", help="HTTP host (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="HTTP port (default 8000)")
    parser.add_argument(
        "--sandbox-ready-after", type=float, default=3.0, help="seconds sandbox resources take to start"
    )
    parser.add_argument(
        "--approval",
        choices=("form", "page", "passkey"),
        help="how a person approves changes: form (default: the client's form, else the approval page), "
        "page (always the approval page) or passkey (the page and an enrolled passkey)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["approvers"]:
        approvers(argv[1:])
        return
    args = parse_args(argv)
    _log_to_stderr()
    settings = _settings(args)
    configure_logging("gpu-mcp", settings.log_format)
    tokens = _static_tokens(settings)
    host = f"[{args.host}]" if ":" in args.host else args.host
    resource = settings.http_public_url or f"http://{host}:{args.port}/mcp"
    audience = _check_http(args, settings, tokens, resource) if args.transport == "http" else None
    sandbox = None
    if args.sandbox:
        # Its port is known and listening at once; it starts serving when the first request reaches
        # it, so the MCP server's start and the client's first requests (none needs it) go first.
        sandbox = SandboxServer(ready_after=args.sandbox_ready_after).start(on_first_request=True)
        settings = settings.for_sandbox(sandbox.url)
    try:
        server = build_server(settings)
    except GpuToolsError as exc:
        if sandbox:
            sandbox.stop()
        raise SystemExit(f"gpu-mcp: {exc}") from None
    _announce(server, settings, sandbox)
    # Start-up built a large heap (modules, models, schemas) that lives as long as the process: frozen
    # out of the garbage collector's view, so the first full collection (which would otherwise land
    # on the first request, tools/list, and scan all of it: about 50 ms) stays small.
    gc.freeze()
    try:
        if args.transport == "stdio":
            _say(
                "serving MCP over stdio: start me from an MCP client, e.g. "
                '{"mcpServers": {"gpu": {"command": "gpu-mcp", "args": ["--sandbox"]}}}'
            )
            server.run()
        else:
            serve_http(server, args, tokens, audience, resource)
    except KeyboardInterrupt:
        pass
    finally:
        if sandbox:
            sandbox.stop()


def _say(text: str) -> None:
    print(f"gpu-mcp: {text}", file=sys.stderr, flush=True)


def _log_to_stderr() -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="gpu-mcp: %(levelname)s %(message)s")
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactingFilter())  # no credential ever reaches the log
    logging.getLogger("httpx").setLevel(logging.WARNING)


def _settings(args: argparse.Namespace) -> Settings:
    """The settings, with the flags over the environment and config.toml; a bad one refuses to start."""
    overrides: dict[str, object] = {}
    if args.read_only:
        overrides["read_only"] = True
    if args.toolsets is not None:
        overrides["toolsets"] = args.toolsets
    if args.approval is not None:
        overrides["approval"] = args.approval
    try:
        return load_settings(**overrides)
    except GpuToolsError as exc:
        refuse(str(exc))


def _static_tokens(settings: Settings) -> dict[str, StaticUser]:
    """The bearer tokens of the settings, each with its user (and scopes) or None (no name)."""
    tokens: dict[str, StaticUser] = {
        token: user if isinstance(user, str) else (user.user, frozenset(user.scopes))
        for token, user in settings.http_tokens.items()
    }
    if settings.http_token is not None:
        tokens[settings.http_token.get_secret_value()] = None
    return tokens


def _check_http(
    args: argparse.Namespace, settings: Settings, tokens: dict[str, StaticUser], resource: str
) -> str | None:
    """Refuse an HTTP configuration that would fail open; the OAuth audience when OAuth is on."""
    # PyJWT and httpx only where HTTP is served: stdio start-up stays as light as it was.
    from mcp_server.oauth import OAuthConfigError, check_oauth_settings

    try:
        audience = check_oauth_settings(settings, resource)
    except OAuthConfigError as exc:
        refuse(str(exc))
    if audience is not None and settings.http_public_url is None and not is_loopback(args.host):
        refuse(
            f"oauth_issuer is set and gpu-mcp serves beyond loopback ({args.host}): set http_public_url "
            "(GPU_TOOLS_HTTP_PUBLIC_URL) to the https URL clients use, e.g. https://gpu.example.com/mcp"
        )
    if audience is not None:
        why = page_signin_problem(settings, args.host)
        if why:
            refuse(why)
    if not tokens and audience is None and not is_loopback(args.host):
        # A token generated here would be the only lock on a server others can reach: choose one.
        refuse(
            f"http_tokens and http_token are both empty: set GPU_TOOLS_HTTP_TOKENS or GPU_TOOLS_HTTP_TOKEN "
            f"(or {config_file()}) before serving HTTP beyond loopback ({args.host})."
        )
    return audience


def _announce(server: Any, settings: Settings, sandbox: SandboxServer | None) -> None:
    tk = server.toolkit
    toolsets = tk.toolsets()
    tools = tk.operations(toolsets)
    configured = [p.name for p in tk.provider_infos() if p.configured]
    _say(
        f"{len(tools)} tools"
        + (" (read-only)" if settings.read_only else "")
        + f" in tool sets {', '.join(toolsets)}"
        + f"; providers with credentials: {', '.join(configured) or 'none'} (config: {config_file()})"
    )
    if sandbox:
        _say(
            f"SANDBOX: every provider is emulated at {sandbox.url} (request log: {sandbox.url}/_sandbox/requests)"
        )


def serve_http(
    server: Any, args: argparse.Namespace, tokens: dict[str, StaticUser], audience: str | None, resource: str
) -> None:
    """Serve the MCP app over streamable HTTP behind the bearer check, with the health, metrics and
    approval-page routes beside it (until Ctrl-C)."""
    import uvicorn

    from gpu_tools.metrics import Metrics, serve_metrics  # Prometheus only where HTTP is served

    tk = server.toolkit
    settings = tk.settings
    host = f"[{args.host}]" if ":" in args.host else args.host
    if not tokens and audience is None:
        _generate_token(tokens)
    names = sorted({n for user in tokens.values() if (n := user[0] if isinstance(user, tuple) else user)})
    if names:
        _say(f"{len(tokens)} bearer token(s); users: {', '.join(names)}")
    _say(f"journal: {tk.journal.location}")
    if settings.http_state_key is None:
        _say(
            "confirmations are sealed with a key of this process only: set GPU_TOOLS_HTTP_STATE_KEY "
            "(the same on every replica) to run several behind one load balancer"
        )
    security = transport_security(args.host, args.port, settings.http_allowed_hosts)
    if not is_loopback(args.host):
        _say(
            "Host/Origin checks accept: "
            + ", ".join(h for h in security.allowed_hosts if not h.endswith(":*"))
            + " (add names with GPU_TOOLS_HTTP_ALLOWED_HOSTS='[\"name\"]')"
        )
    metrics = Metrics(lambda: tk.journal, settings, [p.name for p in tk.provider_infos()])
    install_observer(server, metrics)
    mcp_app = server.streamable_http_app(host=args.host, transport_security=security)
    routes = health_routes(readiness(tk, guard_expected=settings.guard_expected))
    if settings.metrics_token is not None:
        metrics_token = settings.metrics_token.get_secret_value()
        routes.append(metrics_route(lambda: asyncio.to_thread(metrics.render), metrics_token))
    if settings.metrics_port is not None:
        serve_metrics(metrics, args.host, settings.metrics_port)
        _say(f"metrics at http://{host}:{settings.metrics_port}/metrics")
    verifier, metadata_url = None, None
    if audience is not None:
        verifier, metadata_url = _oauth(settings, audience, resource, routes)
    app = BearerAuth(SessionRefusals(mcp_app, tk), tokens, oauth=verifier, resource_metadata_url=metadata_url)
    app = serve_approvals(app, tk, args.host, args.port, tokens, security.allowed_hosts)
    if verifier is not None:
        _page_signin(tk, verifier, resource)
    _say(
        f"serving MCP over streamable HTTP at http://{host}:{args.port}/mcp "
        "(send 'Authorization: Bearer <token>'); Ctrl-C to stop"
    )
    uvicorn.run(Front(app, routes), host=args.host, port=args.port, log_level="warning")


def _generate_token(tokens: dict[str, StaticUser]) -> None:
    """No token configured on loopback: one made here, written where only this user reads it."""
    token = secrets.token_urlsafe(32)
    register_secret(token)
    tokens[token] = None
    try:
        path = write_private(http_token_file(), token + "\n")
    except OSError as exc:
        refuse(
            f"cannot write the generated bearer token to {http_token_file()} ({exc.strerror}): "
            "set GPU_TOOLS_HTTP_TOKEN or http_tokens instead"
        )
    # Never the token itself: MCP clients keep a server's stderr in their logs.
    _say(
        f"generated a bearer token, readable only by you: cat {path} "
        "(set GPU_TOOLS_HTTP_TOKEN or http_tokens to choose one)"
    )


def _oauth(settings: Settings, audience: str, resource: str, routes: list[Any]) -> tuple[Any, str]:
    """The OAuth verifier of access tokens, the protected-resource metadata routes (added to
    `routes`) and their URL; the issuer is probed once, and what it answered is said."""
    from mcp_server.oauth import OAuthVerifier

    if settings.oauth_issuer is None:
        raise RuntimeError("internal error: expected settings.oauth_issuer is not None")
    verifier = OAuthVerifier(settings, audience)
    routes += protected_resource_routes(resource, settings.oauth_issuer)
    metadata_url = resource_metadata_url(resource)
    # A verifier of its own, on a loop of its own: the one serving binds its client to uvicorn's.
    probe = OAuthVerifier(settings.model_copy(update={"http_timeout": 5.0}), audience)
    _say(
        f"OAuth: access tokens of {settings.oauth_issuer} for audience {audience} "
        f"(user claim {settings.oauth_user_claim}): {asyncio.run(probe.probe())}; "
        f"protected-resource metadata at {metadata_url}"
    )
    return verifier, metadata_url


def _page_signin(tk: Any, verifier: Any, resource: str) -> None:
    """The approval page signs people in through the same identity provider (its own client there)."""
    from gpu_tools.approvals.oidc import ProviderSignIn

    settings = tk.settings
    secret = settings.approval_oidc_client_secret
    tk.approvals.provider = ProviderSignIn(
        verifier,
        client_id=str(settings.approval_oidc_client_id),
        client_secret=secret.get_secret_value() if secret is not None else None,
        scopes=settings.approval_oidc_scopes,
        # The resource indicator where the audience is the resource itself (the default); a provider
        # with its own audience (Entra ID) gets it from the scopes instead.
        resource=resource if settings.oauth_audience is None else None,
        clock=tk.now,
        timeout=settings.http_timeout,
    )
    _say(
        f"approval page: people sign in through {settings.oauth_issuer} as client "
        f"{settings.approval_oidc_client_id} (redirect URI "
        f"{tk.approvals.origin()}/approvals/signin/callback); approving needs gpu.approve"
    )


def approvers(argv: list[str]) -> None:
    """`gpu-mcp approvers add NAME | list | remove NAME`: the people whose passkeys approve changes
    (approval = "passkey"), kept in the journal database every server of a team shares."""
    import getpass
    import time
    import webbrowser

    from gpu_tools.toolkit import Toolkit

    parser = argparse.ArgumentParser(prog="gpu-mcp approvers", description=approvers.__doc__)
    parser.add_argument("--sandbox", action="store_true", help="the approvers of `gpu-mcp --sandbox` servers")
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add", help="print (and open) a one-time link where NAME enrolls a passkey")
    add.add_argument("name")
    add.add_argument("--no-browser", action="store_true", help="print the link only")
    commands.add_parser("list", help="the enrolled approvers")
    remove = commands.add_parser("remove", help="remove NAME's passkeys")
    remove.add_argument("name")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except GpuToolsError as exc:
        refuse(str(exc))
    if args.sandbox:
        settings = settings.for_sandbox("http://127.0.0.1:9")  # only its journal is used here
    tk = Toolkit(settings)
    me = getpass.getuser()
    say = lambda text: print(text, flush=True)  # noqa: E731
    try:
        if args.command == "list":
            rows = tk.journal.approvers()
            for row in rows:
                say(f"{row['name']}  enrolled {row['created_at']}  passkey {row['credential_id'][:12]}...")
            if not rows:
                say("no approvers: gpu-mcp approvers add NAME")
        elif args.command == "remove":
            gone = tk.journal.remove_approver(args.name, by=me)
            if not gone:
                refuse(f"no approver named {args.name!r} (gpu-mcp approvers list)")
            tk.approvals.notify("approver_removed", {"name": args.name, "by": me}, background=False)
            say(f"removed {args.name} ({gone} passkey(s))")
        else:
            passkeys = tk.approvals.passkeys
            token = passkeys.new_enrollment(args.name, by=me)
            if settings.approval_origin:
                # The team's server serves the page (its name is the passkeys' relying party).
                say(
                    f"{args.name} enrolls at {settings.approval_origin}/approvals/enroll/{token} (valid 24 hours, once)"
                )
                return
            link = passkeys.enroll_link(token)  # serves the page on loopback, in this process
            before = len(tk.journal.approvers())
            note = "" if before == 0 else " (sign in there with an existing approver's passkey first)"
            say(f"{args.name} enrolls a passkey at {link}{note}; waiting (Ctrl-C to stop)")
            if not args.no_browser:
                webbrowser.open(link)
            while len(tk.journal.approvers()) == before:
                time.sleep(0.5)
            say(f"enrolled {args.name}")
    except KeyboardInterrupt:
        say("stopped: nothing enrolled")
    finally:
        tk.close()


def page_signin_problem(settings: Any, host: str) -> str | None:
    """Why the approval page of an HTTP server with `oauth_issuer` cannot sign people in safely (None:
    it can). Without its own client at the provider the page would fall back to one-time codes on the
    operator's log, which name nobody: a team's approvals would not be tied to a person or a role."""
    if not settings.approval_oidc_client_id:
        return (
            "oauth_issuer is set but approval_oidc_client_id is not: register the approval page as a client "
            "at the provider (redirect URI <page origin>/approvals/signin/callback) and set "
            "GPU_TOOLS_APPROVAL_OIDC_CLIENT_ID, so approvers sign in with the provider and need gpu.approve"
        )
    if "openid" not in settings.approval_oidc_scopes.split():
        return "approval_oidc_scopes must hold openid: the page signs people in with an ID token"
    if not is_loopback(host) and not settings.approval_origin:
        return (
            f"oauth_issuer is set and gpu-mcp serves beyond loopback ({host}): set approval_origin "
            "(GPU_TOOLS_APPROVAL_ORIGIN) to the https origin of the approval page, where the provider "
            "sends people back"
        )
    return None


def serve_approvals(app: Any, tk: Any, host: str, port: int, tokens: dict[str, Any], hosts: list[str]) -> Any:
    """The approval page under /approvals/ of the HTTP server (outside the bearer check: a browser
    signs in on the page with its token, a one-time code or a passkey)."""
    from gpu_tools.approvals.page import with_page

    approvals = tk.approvals
    origin = tk.settings.approval_origin
    approvals.base_url = origin or f"http://{'localhost' if is_loopback(host) else host}:{port}"
    approvals.tokens = tokens
    if origin:
        hosts = [*hosts, origin.removeprefix("https://")]
    print(f"gpu-mcp: approval page: {approvals.base_url}/approvals/", file=sys.stderr, flush=True)
    return with_page(app, approvals, hosts)


if __name__ == "__main__":
    main()
