"""Real Chromium for the approval page: Debian's `chromium` driven by Playwright (no downloaded
browsers), and the sign-in a person does with the one-time code gpu-tools showed them."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
# Where screenshots go (look at them): $SCREENS_DIR, else a directory in the temporary directory.
SCREENS = Path(os.environ.get("SCREENS_DIR") or Path(tempfile.gettempdir()) / "gpu-tools-screens")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
CODE = re.compile(r"open (\S+) and sign in with the one-time code ([A-Z0-9]{4}-[A-Z0-9]{4})")


def need_chromium() -> None:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (.ci/run installs it with apt-get)")
    pytest.importorskip("playwright")


@asynccontextmanager
async def chromium() -> AsyncIterator[Any]:
    """A headless Chromium browser (one per test: its state is the test's own)."""
    need_chromium()
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        try:
            yield browser
        finally:
            await browser.close()


def link_and_code(lines: list[str], approval_id: str | None = None) -> tuple[str, str]:
    """The link and one-time code the server showed for an approval (the last one, or `approval_id`'s)."""
    for line in reversed(lines):
        found = CODE.search(line)
        if found and (approval_id is None or found.group(1).endswith(f"/approvals/{approval_id}")):
            return found.group(1), found.group(2)
    raise AssertionError(f"no approval link with a code in {lines!r}")


async def sign_in(page: Any, url: str, code: str) -> None:
    """Open the link, and type the one-time code as the person would."""
    await page.goto(url)
    await page.fill("input[name=code]", code)
    await submit(page)
    assert await page.query_selector("#status"), await page.content()


async def submit(page: Any, button: str = "button[type=submit]") -> Any:
    """Click a form's submit button and wait until the browser has loaded the page the POST leads to
    (waiting for a load state alone can see the old page, before the navigation starts). Returns the
    response that page came from: the POST's own when it answered with a page, not a redirect."""
    async with page.expect_navigation() as moved:
        await page.click(button)
    return await moved.value


async def decide(page: Any, choice: str = "approve") -> Any:
    """Click Approve or Deny and return the answer to that POST, once the browser has loaded the page
    that answer leads to (so the next step reads, or reloads, the new page, not one mid-navigation)."""
    async with page.expect_navigation():
        async with page.expect_response(lambda r: r.request.method == "POST") as answer:
            await page.click(f"button[value={choice}]")
    return await answer.value


async def screenshot(page: Any, name: str) -> Path:
    SCREENS.mkdir(parents=True, exist_ok=True)
    path = SCREENS / name
    await page.screenshot(path=str(path), full_page=True)
    return path
