"""The journal's cost as its history grows: `spend` (the toolkit's spend path, with its budget
report) and a dry-run create's plan (every cap and budget configured, so every check runs) over a
realistic journal of 1k and 100k rows, on SQLite and on PostgreSQL (a server of our own, started by
tests/pg.py), with no provider latency, so what grows is our own work; then 50 concurrent `spend`s
against one, with 100 ms of provider latency (the sandbox's faults), as real clouds answer. The
sandbox runs as a process of its own (`gpu-sandbox`), so its work is not counted as ours; each
figure is the fastest of its runs (the least disturbed by a busy machine).

The history is what a team's journal holds after months of use, at a steady ~200 rows a day: four
providers; creates (some failed, some refused by a cap), updates with new prices, stops and starts,
deletes; and 10 resources live at the end, created through the toolkit in the sandbox. It is
written as the previous schema version (3) stored it, so opening it also runs the upgrade.

The last line reads `growth: spend X.XXx, plan X.XXx, concurrent X.XXx`: the worst over both
backends of spend(100k) / spend(1k), plan(100k) / plan(1k), and 50 concurrent spends / one (the
worse of the two sizes). Goals: 1.5x, 1.5x, 5x."""

from __future__ import annotations

import asyncio
import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent))
import httpx
from _common import NEOLINK_CREATE, NETMIND_CREATE, SESTERCE_CREATE, sandbox_process
from pydantic import SecretStr

from gpu_tools import budget
from gpu_tools.catalog import guard_status
from gpu_tools.gate import Approve
from gpu_tools.reconcile import pending_rows
from gpu_tools.settings import Settings
from gpu_tools.toolkit import Toolkit

SIZES = (1_000, 100_000)
ROWS_PER_DAY = 200
RUNS = 15
CONCURRENT = 50
LATENCY = 0.1
PROVIDERS = ("netmind", "sesterce", "nebius", "neolink")
KINDS = {"netmind": "endpoint", "sesterce": "endpoint", "nebius": "endpoint", "neolink": "instance"}
COLUMNS = (
    "at, provider, operation, effect, target, method, path, body, usd_per_hour, outcome, error,"
    " resource_id, idempotency_key, sandbox, kind, expires_at, args_hash, actor, expires_action,"
    " confirmed_by"
)
LIMITS = {
    "max_usd_per_hour": 1e6,
    "max_total_usd_per_hour": 1e9,
    "budget_usd_per_day": 1e9,
    "budget_usd_total": 1e12,
}


def history(rows: int, now: datetime) -> list[tuple[Any, ...]]:
    """`rows` rows as the gate writes them, ending an hour before `now`, nothing left live."""
    rng = random.Random(rows)
    out: list[tuple[Any, ...]] = []
    step = timedelta(days=1) / ROWS_PER_DAY
    clock = [now - timedelta(hours=1) - timedelta(days=rows / ROWS_PER_DAY)]
    users = ("alice@example.com", "bob@example.com", "carol@example.com")

    def row(n: int, effect: str, operation: str, outcome: str, **kw: Any) -> None:
        clock[0] += step
        provider = PROVIDERS[n % 4]
        rid = f"{provider[:3]}-{n:07d}"
        user = users[n % 3]
        out.append(
            (
                clock[0].isoformat(timespec="seconds"),
                provider,
                operation,
                effect,
                rid,
                kw.get("method", "POST"),
                f"/{provider}/resources",
                '{"name": "job"}',
                kw.get("usd"),
                outcome,
                kw.get("error"),
                kw.get("resource_id", rid),
                kw.get("key"),
                0,
                KINDS[provider] if effect == "create" else None,
                kw.get("expires_at"),
                f"h{n}",
                user,
                "delete" if kw.get("expires_at") else None,
                user if effect == "create" else None,
            )
        )

    n = 0
    while len(out) < rows:
        n += 1
        provider = PROVIDERS[n % 4]
        usd = round(rng.uniform(0.5, 12.0), 2)
        create = f"{provider}_create_{KINDS[provider]}"
        roll = rng.random()
        if roll < 0.05:
            error = "policy max_usd_per_hour: over the cap"
            row(n, "create", create, "refused", usd=usd, error=error, resource_id=None)
            continue
        if roll < 0.08:
            row(
                n, "create", create, "failed", usd=usd, error="provider said 400: bad image", resource_id=None
            )
            continue
        expires = (clock[0] + timedelta(hours=rng.uniform(1, 8))).isoformat(timespec="seconds")
        row(n, "create", create, "ok", usd=usd, expires_at=expires, key=f"k{n}")
        if rng.random() < 0.3:
            row(n, "update", f"{provider}_update", "ok", usd=round(usd * 1.5, 2))
        if rng.random() < 0.3:
            row(n, "update", "stop_resource", "ok")
            row(n, "update", "start_resource", "ok")
        row(n, "destroy", "delete_resource", "ok", method="DELETE")
    return out[:rows]


def write_history(target: str, rows: int, now: datetime) -> None:
    """The rows, as the previous schema version stored them (opening the journal upgrades it)."""
    from gpu_tools.journal import PostgresJournal, SqliteJournal

    old: Any = (
        PostgresJournal(target, schema_version=3)
        if target.startswith("postgresql://")
        else SqliteJournal(Path(target), schema_version=3)
    )
    data = history(rows, now)
    marks = ",".join("?" * len(COLUMNS.split(",")))
    with old._tx() as db:
        if target.startswith("postgresql://"):
            with db.conn.cursor() as cur:  # type: ignore[attr-defined]
                cur.executemany(f"INSERT INTO journal ({COLUMNS}) VALUES ({marks.replace('?', '%s')})", data)
        else:
            db.executemany(f"INSERT INTO journal ({COLUMNS}) VALUES ({marks})", data)  # type: ignore[attr-defined]
    old.close()


async def live_ten(tk: Toolkit) -> None:
    """10 resources live at the end, created (and journaled) through the toolkit."""
    for i in range(10):
        tool, args = [
            ("netmind_create_endpoint", NETMIND_CREATE),
            ("sesterce_create_endpoint", SESTERCE_CREATE),
            ("neolink_create_instance", NEOLINK_CREATE),
        ][i % 3]
        name = "display_name" if tool.startswith("neolink") else "name"
        await tk.call(tool, {**args, name: f"live{i}", "expires_in": "6h"}, confirmer=Approve())


def set_latency(url: str, latency: float) -> None:
    for provider in PROVIDERS:
        httpx.post(f"{url}/_sandbox/faults", json={"provider": provider, "latency": latency})


async def timed(fn: Any) -> float:
    t0 = time.perf_counter()
    await fn()
    return time.perf_counter() - t0


async def measure(backend: str, rows: int, admin_url: str | None) -> dict[str, float]:
    sandbox, url = await sandbox_process()
    home = Path(tempfile.mkdtemp(prefix="gpu-bench-"))
    if backend == "postgresql":
        from tests.pg import new_database

        target = new_database(admin_url or "", f"growth_{rows}")
    else:
        target = str(home / "journal.sqlite3")
    write_history(target, rows, datetime.now(UTC))
    settings = Settings(provider_timeout=120, journal_path=home / "sandbox.sqlite3", **LIMITS)  # type: ignore[arg-type]
    settings = settings.for_sandbox(url)
    if backend == "postgresql":
        settings = settings.model_copy(update={"journal_url": SecretStr(target)})
    else:
        settings = settings.model_copy(update={"journal_path": Path(target)})
    tk = Toolkit(settings)  # opening it upgrades the journal to the current schema
    if backend == "postgresql":  # the bulk load's autovacuum would otherwise run during the timing
        import psycopg

        with psycopg.connect(target, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
    try:
        await live_ten(tk)
        live = await tk.call("list_resources", {})
        assert live.total == 10, live.total
        await tk.call("spend", {})  # warm: the catalogue, the connections
        spend = min([await timed(lambda: tk.call("spend", {})) for _ in range(RUNS)])
        counter = iter(range(10**6))

        async def plan() -> None:
            args = {**SESTERCE_CREATE, "name": f"plan{next(counter)}", "expires_in": "2h", "dry_run": True}
            result = await tk.call("sesterce_create_endpoint", args)
            assert result.outcome == "dry_run", result
            assert not [w for w in result.plan.warnings if "Refused" in w], result.plan.warnings

        await plan()
        planned = min([await timed(plan) for _ in range(RUNS)])
        set_latency(url, LATENCY)  # providers answer in 100 ms: what concurrent callers overlap
        one = min([await timed(lambda: tk.call("spend", {})) for _ in range(5)])

        async def fifty() -> None:
            await asyncio.gather(*(tk.call("spend", {}) for _ in range(CONCURRENT)))

        many = min([await timed(fifty) for _ in range(3)])

        async def journal_part() -> None:
            """The journal calls one `spend` makes, as it makes them (on the journal's threads)."""
            aio, now = tk.journal.aio, datetime.now(UTC)
            await aio.run(pending_rows, tk, None)
            await aio.live()
            await aio.created_among(set())
            await aio.run(lambda: budget.report(tk.journal, tk.settings, tk.journal.first_at(), now))
            await aio.run(guard_status, tk, now)

        journal_one = min([await timed(journal_part) for _ in range(5)])
        journal_many = min(
            [
                await timed(lambda: asyncio.gather(*(journal_part() for _ in range(CONCURRENT))))
                for _ in range(3)
            ]
        )
    finally:
        await tk.aclose()
        tk.close()
        sandbox.terminate()
        await sandbox.wait()
    return {
        "spend": spend,
        "plan": planned,
        "one": one,
        "many": many,
        "journal_one": journal_one,
        "journal_many": journal_many,
    }


async def main(sizes: tuple[int, int] = SIZES) -> None:
    from tests.pg import NoPostgres, temporary_postgres

    results: dict[str, dict[int, dict[str, float]]] = {}
    backends = ["sqlite", "postgresql"]
    try:
        pg = temporary_postgres()
        admin = pg.__enter__()
    except NoPostgres as exc:
        print(f"postgresql: skipped ({exc})")
        backends, pg, admin = ["sqlite"], None, None
    try:
        for backend in backends:
            results[backend] = {}
            for rows in sizes:
                results[backend][rows] = r = await measure(backend, rows, admin)
                print(
                    f"{backend:>10} {rows:>7} rows: spend {r['spend'] * 1000:8.1f} ms  plan {r['plan'] * 1000:8.1f} ms"
                    f"  {CONCURRENT} spends at once {r['many'] * 1000:8.1f} ms vs one {r['one'] * 1000:6.1f} ms"
                    f" ({r['many'] / r['one']:.2f}x); the journal's part: {r['journal_one'] * 1000:.1f} ms,"
                    f" {r['journal_many'] * 1000:.1f} ms for {CONCURRENT} at once",
                    flush=True,
                )
    finally:
        if pg is not None:
            pg.__exit__(None, None, None)
    small, big = sizes
    worst = {"spend": 0.0, "plan": 0.0, "concurrent": 0.0}
    for backend, by in results.items():
        spend = by[big]["spend"] / by[small]["spend"]
        plan = by[big]["plan"] / by[small]["plan"]
        concurrent = max(r["many"] / r["one"] for r in by.values())
        print(f"{backend:>10}: spend {spend:.2f}x, plan {plan:.2f}x, concurrent {concurrent:.2f}x")
        worst = {
            "spend": max(worst["spend"], spend),
            "plan": max(worst["plan"], plan),
            "concurrent": max(worst["concurrent"], concurrent),
        }
    print(
        f"growth: spend {worst['spend']:.2f}x, plan {worst['plan']:.2f}x, concurrent {worst['concurrent']:.2f}x"
    )


if __name__ == "__main__":
    os.environ.setdefault("GPU_TOOLS_HOME", tempfile.mkdtemp(prefix="gpu-bench-"))
    # Other sizes for a quick look: python bench/journal_growth.py 1000 10000
    asyncio.run(main((int(sys.argv[1]), int(sys.argv[2]))) if len(sys.argv) == 3 else main())
