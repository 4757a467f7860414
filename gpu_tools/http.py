"""One httpx.AsyncClient per provider: timeouts, retries for safe calls, error mapping.

Retries happen only for GET/HEAD (and reads a provider marks safe) on 429/502/503/504 and
connection errors, with bounded exponential backoff that honours `Retry-After`. A mutating request
is sent exactly once: if it may have reached the provider, retrying could create twice. When its
answer is lost (a read timeout, a dropped connection, a 5xx, an unreadable 2xx), the call raises
`OutcomeUnknown`, never a plain failure: the provider may have acted.

At most `MAX_IN_FLIGHT` requests per provider are on the wire at once; the rest wait their turn
here (a semaphore wakes the next waiter in constant time, where httpcore's pool rescans its whole
wait queue on every release). Every client shares one TLS context: building one loads the CA
bundle, which is the slowest part of a first call.

`Memo` keeps answers for a while and makes concurrent callers share one fetch; given a `Kept`, it
also keeps them on a `Shelf` for the next process.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
import ssl
import time
from collections.abc import Awaitable, Callable, Hashable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import pydantic_core

from gpu_tools import errors
from gpu_tools.models import Clock, utc_now
from gpu_tools.shelf import Shelf, age

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("gpu_tools.http")
V = TypeVar("V")

RETRY_STATUSES = {429, 502, 503, 504}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_BACKOFF = 8.0
MAX_RETRY_AFTER = 30.0  # a longer Retry-After is reported, not waited out
USER_AGENT = "gpu-tools/0.1 (+python-httpx)"
MAX_IN_FLIGHT = 16  # requests per provider on the wire at once


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The one TLS context every provider's client uses (httpx's defaults: certifi, or
    SSL_CERT_FILE / SSL_CERT_DIR)."""
    import httpx

    return httpx.create_ssl_context()


@dataclass(frozen=True)
class Stamped(Generic[V]):
    """A value and when it was fetched (wall clock for people, monotonic for expiry)."""

    value: V
    at: datetime
    mono: float


@dataclass(frozen=True)
class Kept(Generic[V]):
    """Where a `Memo` keeps its values between processes, and how they read and write as JSON."""

    shelf: Shelf
    section: str
    dump: Callable[[V], Any]
    load: Callable[[Any], V]


# Set by the gate while it re-reads a plan just before a send: every Memo fetches anew (no kept value,
# no shelf, no fetch started earlier), so the price sent is the provider's price at that moment.
FRESH: ContextVar[bool] = ContextVar("gpu_tools_fresh_reads", default=False)


class Memo(Generic[V]):
    """Values kept per key for `ttl()` seconds, fetched once per key at a time.

    A caller that finds the value missing or expired starts the fetch; callers that arrive while it
    is in flight await the same fetch instead of sending their own requests. `refresh=True` ignores
    a kept value and joins only a fetch that was itself a refresh. Failures are not kept. A caller
    that is cancelled (a fan-out's time budget) leaves the fetch running for the others.
    """

    def __init__(
        self,
        ttl: Callable[[], float],
        clock: Callable[[], float] = time.monotonic,
        *,
        kept: Kept[V] | None = None,
        now: Clock = utc_now,
    ) -> None:
        self._ttl = ttl
        self._clock = clock
        self._now = now
        self._kept = kept
        self._values: dict[Hashable, Stamped[V]] = {}
        self._inflight: dict[Hashable, tuple[asyncio.Task[Stamped[V]], bool]] = {}

    def fresh(self, key: Hashable) -> Stamped[V] | None:
        hit = self._values.get(key)
        if hit is None and self._kept is not None:
            hit = self._from_shelf(key, self._kept)
        return hit if hit is not None and self._clock() - hit.mono < self._ttl() else None

    def _from_shelf(self, key: Hashable, kept: Kept[V]) -> Stamped[V] | None:
        """A value an earlier process kept, if younger than the ttl, with its first fetch time."""
        found = kept.shelf.get(kept.section, json.dumps(key))
        if found is None:
            return None
        at, raw = found
        seconds = age(at, self._now())
        if not 0 <= seconds < self._ttl():
            return None  # too old, or stamped in the future (a clock that went back): fetch
        try:
            value = kept.load(raw)
        except (ValueError, TypeError, KeyError):
            return None  # written by another version: fetch
        stamped = self._values[key] = Stamped(value, at, self._clock() - seconds)
        return stamped

    def clear(self) -> None:
        self._values.clear()

    async def get(
        self, key: Hashable, fetch: Callable[[], Awaitable[V]], *, refresh: bool = False
    ) -> Stamped[V]:
        if FRESH.get():
            return await self._fetch(key, fetch, True)
        if not refresh and (hit := self.fresh(key)) is not None:
            return hit
        loop = asyncio.get_running_loop()
        running = self._inflight.get(key)
        if running is None or running[0].get_loop() is not loop or (refresh and not running[1]):
            task = loop.create_task(self._fetch(key, fetch, refresh))
            self._inflight[key] = (task, refresh)
            task.add_done_callback(functools.partial(self._done, key))
            running = (task, refresh)
        return await asyncio.shield(running[0])

    async def _fetch(self, key: Hashable, fetch: Callable[[], Awaitable[V]], refresh: bool) -> Stamped[V]:
        stamped = Stamped(await fetch(), self._now(), self._clock())
        self._values[key] = stamped
        if self._kept is not None:
            self._kept.shelf.put(
                self._kept.section,
                json.dumps(key),
                stamped.at,
                self._kept.dump(stamped.value),
                force=refresh,
            )
        return stamped

    def _done(self, key: Hashable, task: asyncio.Task[Stamped[V]]) -> None:
        if self._inflight.get(key, (None, False))[0] is task:
            del self._inflight[key]
        if not task.cancelled():
            task.exception()  # retrieved here, so a fetch whose callers all left logs no warning


def extract_message(body: Any) -> str | None:
    """Find the human message in the common error shapes (FastAPI, NestJS, OpenAI, plain)."""
    if isinstance(body, str):
        return body.strip() or None
    if not isinstance(body, dict):
        return None
    detail = body.get("detail")
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                loc = ".".join(str(p) for p in item.get("loc", []) if p != "body")
                parts.append(f"{loc}: {item.get('msg')}" if loc else str(item.get("msg")))
            else:
                parts.append(str(item))
        return "; ".join(parts) or None
    if isinstance(detail, str):
        return detail
    for key in ("message", "msg", "error_description", "error"):
        value = body.get(key)
        if isinstance(value, dict):
            value = value.get("message") or json.dumps(value)
        if isinstance(value, list):
            value = "; ".join(str(v) for v in value)
        if value:
            return str(value)
    return None


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def error_for(provider: str, response: httpx.Response) -> errors.ProviderError:
    """Map an HTTP error answer to a typed error carrying the provider's own message."""
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text[:300]
    message = extract_message(body) or response.reason_phrase or "error"
    status = response.status_code
    kw: dict[str, Any] = {"provider": provider, "status": status}
    if status in (401, 403):
        return errors.AuthError(message, hint="Check the API key in your settings.", **kw)
    if status == 404:
        return errors.NotFound(message, **kw)
    if status == 429:
        return errors.RateLimited(message, retry_after=_retry_after(response), **kw)
    if status >= 500:
        return errors.ProviderUnavailable(message, **kw)
    return errors.ProviderRejected(message, **kw)


def check_path(path: str, provider: str) -> None:
    """Refuse a path that would reach somewhere other than it says: `.`/`..` segments (which URL
    normalization resolves to a parent path) or control characters. Ids are checked when the input
    is parsed; this is the last line before the wire."""
    segments = path.split("?", 1)[0].split("/")
    if _CONTROL.search(path) or any(seg in (".", "..") for seg in segments):
        raise errors.InvalidInput(
            f"refused to send a request to {path!r}: it is not a plain path.", provider=provider
        )


# Observers of every provider request a front installs (metrics): called with (provider, method,
# status, seconds), status "2xx".."5xx", "timeout" or "error". No URL, body or header is handed on.
RequestObserver = Callable[[str, str, str, float], None]
REQUEST_OBSERVERS: list[RequestObserver] = []


def observe_requests(observer: RequestObserver) -> None:
    if observer not in REQUEST_OBSERVERS:
        REQUEST_OBSERVERS.append(observer)


def _observed(provider: str, method: str, status: str, seconds: float) -> None:
    for observer in REQUEST_OBSERVERS:
        try:
            observer(provider, method, status, seconds)
        except Exception:  # an observer never breaks a provider call
            log.exception("request observer failed")


class ProviderHTTP:
    """The HTTP client of one provider. Credentials live in `headers` and never leave it."""

    def __init__(
        self,
        provider: str,
        base_url: str,
        headers: Mapping[str, str],
        *,
        timeout: float = 30.0,
        retries: int = 3,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self._headers = {"User-Agent": USER_AGENT, "Accept": "application/json", **headers}
        self._timeout = timeout
        self._retries = retries
        self._transport = transport
        self._sleep = sleep
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._slots = asyncio.Semaphore(MAX_IN_FLIGHT)

    def _get_client(self) -> httpx.AsyncClient:
        import httpx  # imported by the first request, not by `gpu-mcp` start-up (tools/list needs none)

        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop or self._client.is_closed:
            # A client (and the semaphore) is bound to the loop it was first used on; a new loop
            # gets new ones. The pool holds as many connections as may be in flight, so no
            # request ever waits in the pool's own queue.
            self._client = httpx.AsyncClient(
                headers=self._headers,
                timeout=self._timeout,
                transport=self._transport,
                verify=tls_context(),
                limits=httpx.Limits(max_connections=MAX_IN_FLIGHT, max_keepalive_connections=MAX_IN_FLIGHT),
            )
            self._slots = asyncio.Semaphore(MAX_IN_FLIGHT)
            self._loop = loop
        return self._client

    async def aclose(self) -> None:
        if self._client is not None and self._loop is asyncio.get_running_loop():
            await self._client.aclose()
        self._client = None

    def url(self, path: str, base_url: str | None = None) -> str:
        if path.startswith(("http://", "https://")):
            return path
        check_path(path, self.provider)
        return (base_url or self.base_url).rstrip("/") + "/" + path.lstrip("/")

    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, Any] | None = None,
        safe: bool | None = None,
        base_url: str | None = None,
    ) -> Any:
        """Send one call and return the decoded JSON (None for an empty body).

        `safe` says whether the call may be retried; by default only GET and HEAD are.
        """
        import httpx

        retryable = safe if safe is not None else method in ("GET", "HEAD")
        attempts = 1 + (self._retries if retryable else 0)
        url = self.url(path, base_url)
        client = self._get_client()
        clean_params = {k: v for k, v in (params or {}).items() if v is not None} or None
        for attempt in range(attempts):
            last = attempt == attempts - 1
            started = time.monotonic()
            try:
                async with self._slots:
                    response = await client.request(method, url, json=json_body, params=clean_params)
            except httpx.TransportError as exc:
                failed = "timeout" if isinstance(exc, httpx.TimeoutException) else "error"
                _observed(self.provider, method, failed, time.monotonic() - started)
                # Failures that prove a request never left this machine: safe to call "failed".
                not_sent = isinstance(
                    exc,
                    httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout | httpx.UnsupportedProtocol,
                )
                if not last and isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
                    await self._sleep(self._backoff(attempt))
                    continue
                if not retryable and not not_sent:
                    raise self._unknown(method, path, self._lost(exc)) from None
                if isinstance(exc, httpx.TimeoutException):
                    raise errors.ProviderTimeout(
                        f"no answer within {self._timeout:g}s to {method} {path}", provider=self.provider
                    ) from None
                raise errors.ProviderUnavailable(
                    f"could not reach {self.base_url} ({type(exc).__name__})", provider=self.provider
                ) from None
            _observed(self.provider, method, f"{response.status_code // 100}xx", time.monotonic() - started)
            if response.status_code in RETRY_STATUSES and not last:
                wait = _retry_after(response)
                if wait is None or wait <= MAX_RETRY_AFTER:
                    await self._sleep(self._backoff(attempt) if wait is None else wait)
                    continue
            if response.status_code >= 500 and not retryable:
                error = error_for(self.provider, response)
                raise self._unknown(
                    method, path, f"it answered HTTP {response.status_code} ({error.message})"
                )
            if response.status_code >= 400:
                raise error_for(self.provider, response)
            try:
                return self._decode(response, method, path)
            except errors.MalformedResponse as exc:
                if retryable:
                    raise
                raise self._unknown(method, path, f"its answer could not be read ({exc.message})") from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _lost(self, exc: httpx.TransportError) -> str:
        import httpx

        if isinstance(exc, httpx.TimeoutException):
            return f"no answer came within {self._timeout:g}s"
        return f"the connection failed after sending ({type(exc).__name__})"

    def _unknown(self, method: str, path: str, why: str) -> errors.OutcomeUnknown:
        return errors.OutcomeUnknown(
            f"{method} {path} may have reached the provider, but {why}. What it did is unknown: the "
            "resource may exist. Nothing will be resent.",
            provider=self.provider,
        )

    @staticmethod
    def _backoff(attempt: int) -> float:
        return min(MAX_BACKOFF, 0.25 * (2**attempt))

    def _decode(self, response: httpx.Response, method: str, path: str) -> Any:
        if response.status_code == 204 or not response.content.strip():
            return None
        try:
            return pydantic_core.from_json(response.content)  # what response.json() does, in Rust
        except ValueError:
            raise errors.MalformedResponse(
                f"answered {method} {path} with something that is not JSON: {response.text[:120]!r}",
                provider=self.provider,
                status=response.status_code,
            ) from None
