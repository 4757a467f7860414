"""Passkeys: proof that an enrolled approver, in person, approved (WebAuthn, the `webauthn` package).

The relying party is the page's own host (`localhost` on loopback, `approval_origin`'s name on a
team server, where HTTPS is required). Every assertion needs user verification (the authenticator's
PIN or biometric). Challenges are made here, kept in memory for a few minutes and used once; an
approval's challenge is bound to that approval, so an assertion for one approves no other.

Enrollment: `gpu-mcp approvers add NAME` makes a one-time enrollment token (kept in the journal,
hashed, so the team server that serves the page honours a token made by the command on another
machine); the first approver enrolls with the token alone, every later one only in a session signed
in with an existing approver's passkey. Enrollments and removals are journaled and posted to the
webhook. Credentials (id, public key, signature counter) live in the journal database.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url, parse_client_data_json
from webauthn.helpers.exceptions import InvalidAuthenticationResponse, InvalidRegistrationResponse
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from gpu_tools.approvals import ADMIN, APPROVE, templates

if TYPE_CHECKING:
    from gpu_tools.approvals import Approvals, Session

CHALLENGE_TTL = timedelta(minutes=5)
ENROLL_TTL = timedelta(hours=24)
ENROLL_META = "approver_enrollment:"  # journal meta key prefix: sha256(token) -> {name, expires, by}


@dataclass
class Challenge:
    purpose: str  # "approve", "signin", "enroll"
    bound: str  # the approval id, the enrollment token's digest, or "" (sign-in)
    expires: datetime


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class Passkeys:
    def __init__(self, approvals: Approvals) -> None:
        self.approvals = approvals
        self._challenges: dict[str, Challenge] = {}
        self._lock = threading.Lock()

    # ---- relying party ------------------------------------------------------------------------
    def origin(self) -> str:
        return self.approvals.origin()

    def rp_id(self) -> str:
        return urlsplit(self.origin()).hostname or "localhost"

    def _challenge(self, purpose: str, bound: str) -> bytes:
        raw = secrets.token_bytes(32)
        with self._lock:
            now = self.approvals.tk.now()
            self._challenges = {k: v for k, v in self._challenges.items() if v.expires > now}
            self._challenges[bytes_to_base64url(raw)] = Challenge(purpose, bound, now + CHALLENGE_TTL)
        return raw

    def _take(self, credential: str, purpose: str, bound: str | None) -> bytes:
        """The challenge this credential answers, if it was made here for `purpose` (and `bound`),
        is unexpired and unused; it is used up now."""
        try:
            data = json.loads(credential)
            client_data = parse_client_data_json(base64url_to_bytes(data["response"]["clientDataJSON"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"not a passkey answer ({type(exc).__name__})") from None
        key = bytes_to_base64url(client_data.challenge)
        with self._lock:
            found = self._challenges.pop(key, None)
        if found is None or found.expires < self.approvals.tk.now():
            raise ValueError("this passkey answer is for no open challenge (it expired or was used)")
        if found.purpose != purpose or (bound is not None and found.bound != bound):
            raise ValueError("this passkey answer was made for something else")
        return client_data.challenge

    def _descriptors(self) -> list[PublicKeyCredentialDescriptor]:
        return [
            PublicKeyCredentialDescriptor(id=base64url_to_bytes(row["credential_id"]))
            for row in self.approvals.tk.journal.approvers()
        ]

    def request_options(self, purpose: str, bound: str) -> str:
        options = generate_authentication_options(
            rp_id=self.rp_id(),
            challenge=self._challenge(purpose, bound),
            allow_credentials=self._descriptors(),
            user_verification=UserVerificationRequirement.REQUIRED,
        )
        return options_to_json(options)

    def verify_assertion(self, credential: str, purpose: str, bound: str | None) -> str:
        """The name of the enrolled approver whose passkey made this assertion (with user
        verification) over a challenge made here for `purpose`/`bound`; ValueError otherwise."""
        challenge = self._take(credential, purpose, bound)
        try:
            credential_id = json.loads(credential)["rawId"]
        except (ValueError, KeyError) as exc:
            raise ValueError(f"not a passkey answer ({type(exc).__name__})") from None
        row = next(
            (r for r in self.approvals.tk.journal.approvers() if r["credential_id"] == credential_id), None
        )
        if row is None:
            raise ValueError("this passkey belongs to no enrolled approver")
        try:
            verified = verify_authentication_response(
                credential=credential,
                expected_challenge=challenge,
                expected_rp_id=self.rp_id(),
                expected_origin=self.origin(),
                credential_public_key=base64url_to_bytes(row["public_key"]),
                credential_current_sign_count=int(row["sign_count"]),
                require_user_verification=True,
            )
        except InvalidAuthenticationResponse as exc:
            raise ValueError(f"the passkey answer does not verify: {exc}") from None
        self.approvals.tk.journal.use_credential(credential_id, verified.new_sign_count)
        return str(row["name"])

    def verify_approval(self, approval_id: str, credential: str) -> str:
        return self.verify_assertion(credential, "approve", approval_id)

    # ---- enrollment ---------------------------------------------------------------------------
    def new_enrollment(self, name: str, by: str | None = None) -> str:
        """A one-time enrollment token for `name` (valid 24 hours), kept hashed in the journal."""
        token = secrets.token_urlsafe(24)
        expires = (self.approvals.tk.now() + ENROLL_TTL).isoformat(timespec="seconds")
        self.approvals.tk.journal.set_meta(
            ENROLL_META + _digest(token), json.dumps({"name": name, "expires": expires, "by": by})
        )
        return token

    def enrollment(self, token: str) -> dict[str, Any] | None:
        raw = self.approvals.tk.journal.meta(ENROLL_META + _digest(token))
        if not raw:
            return None
        found = json.loads(raw)
        if found.get("used") or datetime.fromisoformat(found["expires"]) < self.approvals.tk.now():
            return None
        return found

    def enroll_link(self, token: str) -> str:
        return f"{self.approvals.page_url()}/approvals/enroll/{token}"

    def creation_options(self, token: str, name: str) -> str:
        options = generate_registration_options(
            rp_id=self.rp_id(),
            rp_name="gpu-tools approvals",
            user_name=name,
            user_id=secrets.token_bytes(16),
            challenge=self._challenge("enroll", _digest(token)),
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement.PREFERRED,
                user_verification=UserVerificationRequirement.REQUIRED,
            ),
            exclude_credentials=self._descriptors(),
        )
        return options_to_json(options)

    def enroll(self, token: str, credential: str, by: str | None) -> str:
        found = self.enrollment(token)
        if found is None:
            raise ValueError("this enrollment link is not valid (it was used or expired)")
        challenge = self._take(credential, "enroll", _digest(token))
        try:
            verified = verify_registration_response(
                credential=credential,
                expected_challenge=challenge,
                expected_rp_id=self.rp_id(),
                expected_origin=self.origin(),
                require_user_verification=True,
            )
        except InvalidRegistrationResponse as exc:
            raise ValueError(f"the passkey could not be enrolled: {exc}") from None
        journal = self.approvals.tk.journal
        journal.set_meta(ENROLL_META + _digest(token), json.dumps({**found, "used": True}))
        journal.add_approver(
            found["name"],
            bytes_to_base64url(verified.credential_id),
            bytes_to_base64url(verified.credential_public_key),
            by=by,
        )
        self.approvals.notify("approver_enrolled", {"name": found["name"], "by": by})
        return str(found["name"])

    # ---- routes -------------------------------------------------------------------------------
    def routes(self, base: str, session_of: Callable[[Request], Session | None]) -> list[Route]:
        approvals = self.approvals

        async def off_loop(fn: Callable[..., Any], *args: Any) -> Any:
            """Journal work on the journal's workers, never on the server's event loop."""
            return await approvals.tk.journal.aio.run(fn, *args)

        async def approve_options(request: Request) -> Response:
            session = session_of(request)
            if session is None:
                return JSONResponse({"error": "sign in first"}, 401)
            if not session.may(APPROVE):
                return JSONResponse({"error": f"approving needs the role {APPROVE}"}, 403)
            approval_id = request.path_params["id"]
            if await off_loop(approvals.tk.journal.approval, approval_id) is None:
                return JSONResponse({"error": "no such approval"}, 404)
            if not await off_loop(approvals.tk.journal.approvers):
                return JSONResponse({"error": "no approver is enrolled: gpu-mcp approvers add NAME"}, 409)
            options = await off_loop(self.request_options, "approve", approval_id)
            return Response(options, media_type="application/json")

        async def signin_options(request: Request) -> Response:
            options = await off_loop(self.request_options, "signin", "")
            return Response(options, media_type="application/json")

        async def signin(request: Request) -> Response:
            from gpu_tools.approvals.page import COOKIE, _cookie

            try:
                name = await off_loop(self.verify_assertion, (await request.body()).decode(), "signin", None)
            except ValueError as exc:
                return JSONResponse({"error": str(exc)}, 403)
            response = JSONResponse({"signed_in": name})
            _cookie(response, request, COOKIE, approvals.signin.open(name, passkey=name), max_age=8 * 3600)
            return response

        async def enroll_allowed(request: Request) -> tuple[dict[str, Any] | None, str | None, str | None]:
            """(the enrollment, who vouches for it, why not)."""
            found = await off_loop(self.enrollment, request.path_params["token"])
            if found is None:
                return None, None, "This enrollment link is not valid: it was used or it expired."
            session = session_of(request)
            if approvals.provider is not None:
                # A team signing in through its identity provider: approvers are managed by gpu.admin.
                if session is None or session.via != "provider" or not session.may(ADMIN):
                    return (
                        found,
                        None,
                        f"Enrolling an approver needs the role {ADMIN}: sign in through the identity "
                        "provider as an administrator first.",
                    )
                return found, session.user, None
            enrolled = await off_loop(approvals.tk.journal.approvers)
            if enrolled and (session is None or session.passkey is None):
                return found, None, "An approver exists: sign in with an existing approver's passkey first."
            return found, session.passkey if session is not None else None, None

        async def enroll_page(request: Request) -> Response:
            found, _, why = await enroll_allowed(request)
            token = request.path_params["token"]
            if found is None:
                return HTMLResponse(templates.message("Enrollment", why or "", base=base), 404)
            if why:
                pre = secrets.token_urlsafe(8)
                provider = approvals.provider
                text = (
                    templates.signin(
                        base,
                        request.url.path,
                        pre,
                        error=why,
                        passkeys=provider is None,
                        provider=provider.issuer if provider is not None else None,
                        form=False,
                    )
                    if provider is not None
                    else templates.signin(base, request.url.path, pre, error=why, passkeys=True)
                )
                return HTMLResponse(text, 403)
            return HTMLResponse(templates.enroll(found["name"], token, base=base))

        async def enroll_options(request: Request) -> Response:
            found, _, why = await enroll_allowed(request)
            if found is None or why:
                return JSONResponse({"error": why}, 403)
            options = await off_loop(self.creation_options, request.path_params["token"], found["name"])
            return Response(options, media_type="application/json")

        async def enroll(request: Request) -> Response:
            found, by, why = await enroll_allowed(request)
            if found is None or why:
                return JSONResponse({"error": why}, 403)
            try:
                body = (await request.body()).decode()
                name = await off_loop(self.enroll, request.path_params["token"], body, by)
            except ValueError as exc:
                return JSONResponse({"error": str(exc)}, 400)
            return JSONResponse({"enrolled": name})

        return [
            Route(f"{base}/passkey/signin-options", signin_options),
            Route(f"{base}/passkey/signin", signin, methods=["POST"]),
            Route(f"{base}/enroll/{{token}}", enroll_page),
            Route(f"{base}/enroll/{{token}}/options", enroll_options),
            Route(f"{base}/enroll/{{token}}", enroll, methods=["POST"]),
            Route(f"{base}/{{id:str}}/passkey-options", approve_options),
        ]
