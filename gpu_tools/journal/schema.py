"""The journal's tables: one definition for both backends, and the upgrades from every earlier
version. `{ID}`, `{REAL}` and `{GREATEST}` (of two values) are the only words the dialects spell
differently; each backend fills them in."""

from __future__ import annotations

SCHEMA_VERSION = 8  # 6: the approval page's decisions and approvers (journal/decisions.py); 7: prices;
# 8: questions awaiting an answer
_SCHEMA = """
CREATE TABLE IF NOT EXISTS journal (
    id {ID},
    at TEXT NOT NULL,
    provider TEXT NOT NULL,
    operation TEXT NOT NULL,
    effect TEXT NOT NULL,
    target TEXT NOT NULL,
    method TEXT,
    path TEXT,
    body TEXT,
    usd_per_hour {REAL},
    outcome TEXT NOT NULL,
    error TEXT,
    resource_id TEXT,
    result TEXT,
    idempotency_key TEXT,
    sandbox INTEGER NOT NULL DEFAULT 0,
    kind TEXT,
    expires_at TEXT
);
CREATE INDEX IF NOT EXISTS journal_key ON journal (idempotency_key);
"""
# Version 2: scoped idempotency keys with the arguments' hash, approvals, reconciliation notes.
_V2_COLUMNS = {
    "kind": "TEXT",
    "expires_at": "TEXT",
    "args_hash": "TEXT",
    "approval_id": "TEXT",
    "note": "TEXT",
    "actor": "TEXT",
    "expires_action": "TEXT",
}
_V2 = """
CREATE TABLE IF NOT EXISTS approvals (
    id TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    digest TEXT NOT NULL,
    message TEXT NOT NULL,
    created_at TEXT NOT NULL,
    consumed_at TEXT,
    journal_id INTEGER,
    result TEXT
);
CREATE INDEX IF NOT EXISTS approvals_fingerprint ON approvals (fingerprint, created_at);
CREATE INDEX IF NOT EXISTS journal_resource ON journal (provider, resource_id, effect, outcome);
CREATE INDEX IF NOT EXISTS journal_outcome ON journal (outcome, effect);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
# Version 3: who confirmed, keys unique in the database, leases (one gpu-guard acts per pass).
_V3_COLUMNS = {"journal": {"confirmed_by": "TEXT"}, "approvals": {"asked_by": "TEXT"}}
_V3 = """
CREATE UNIQUE INDEX IF NOT EXISTS journal_key_unique ON journal (provider, operation, idempotency_key)
    WHERE idempotency_key IS NOT NULL AND outcome IN ('ok', 'unknown');
CREATE INDEX IF NOT EXISTS journal_actor ON journal (actor, confirmed_by);
CREATE TABLE IF NOT EXISTS leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, until TEXT NOT NULL)
"""

# Version 5: what the checks read, kept as rows are written (the live set; what each resource
# billed, per UTC day, and the day totals), indexes for what the history's filters use, and
# idempotency keys that belong to the user who asked (actor; '' the local user) as well. Every
# statement is idempotent: development builds numbered parts of this 4, and a journal they wrote
# upgrades like one at version 3.
_V5 = """
DROP INDEX IF EXISTS journal_key_unique;
CREATE UNIQUE INDEX IF NOT EXISTS journal_key_user_unique
    ON journal (provider, operation, idempotency_key, COALESCE(actor, ''))
    WHERE idempotency_key IS NOT NULL AND outcome IN ('ok', 'unknown');
CREATE TABLE IF NOT EXISTS live_set (
    id BIGINT PRIMARY KEY,
    at TEXT NOT NULL,
    provider TEXT NOT NULL,
    operation TEXT NOT NULL,
    target TEXT NOT NULL,
    resource_id TEXT,
    kind TEXT,
    expires_at TEXT,
    sandbox INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    expires_action TEXT,
    stopped INTEGER NOT NULL,
    cost {REAL}
);
CREATE TABLE IF NOT EXISTS billing (
    key TEXT NOT NULL,
    day TEXT NOT NULL,
    start_at TEXT NOT NULL,
    end_at TEXT,
    rate {REAL} NOT NULL,
    usd {REAL}
);
CREATE INDEX IF NOT EXISTS billing_key ON billing (key);
CREATE INDEX IF NOT EXISTS billing_day ON billing (day);
CREATE INDEX IF NOT EXISTS billing_open ON billing (key) WHERE end_at IS NULL;
CREATE TABLE IF NOT EXISTS spend_days (day TEXT PRIMARY KEY, usd {REAL} NOT NULL);
CREATE INDEX IF NOT EXISTS journal_at ON journal (at);
CREATE INDEX IF NOT EXISTS journal_confirmed_by ON journal (confirmed_by);
CREATE INDEX IF NOT EXISTS journal_provider ON journal (provider, id);
CREATE INDEX IF NOT EXISTS journal_outcome_id ON journal (outcome, id);
CREATE INDEX IF NOT EXISTS approvals_created ON approvals (created_at)
"""

# Version 7: the prices seen whenever offers are fetched, one row per offer and price (a step of its
# series, from `at`, first seen, to `seen_at`, last seen unchanged): journal/prices.py.
_V7 = """
CREATE TABLE IF NOT EXISTS price_observations (
    id {ID},
    key TEXT NOT NULL,
    at TEXT NOT NULL,
    seen_at TEXT NOT NULL,
    provider TEXT NOT NULL,
    kind TEXT,
    offer_id TEXT NOT NULL,
    gpu TEXT NOT NULL,
    gpu_count INTEGER,
    region TEXT,
    region_id TEXT,
    usd_per_hour {REAL},
    usd_per_gpu_hour {REAL},
    price {REAL},
    currency TEXT,
    estimated INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS price_observations_key ON price_observations (key, id);
CREATE INDEX IF NOT EXISTS price_observations_gpu ON price_observations (gpu, seen_at)
"""

# Version 8: the question a 2026-07-28 round left with the client until its answer comes back
# (journal/approvals.py: `awaiting`, JSON), so one never answered is journaled as refused.
_V8_COLUMNS = {"approvals": {"awaiting": "TEXT"}}
_V8 = """
CREATE INDEX IF NOT EXISTS approvals_awaiting ON approvals (created_at) WHERE awaiting IS NOT NULL
"""

# A create counts as live while it is ok or unknown and no later ok delete removed it; its cost is
# that of the latest ok update with a figure, else the create's own (the planned one if unknown),
# raised to any later update whose outcome is unknown (it may have taken effect). It is stopped when
# this tool's last stop (ok) or start (ok, or unknown: it may have started) of it was a stop.
# {FILTER} picks the creates to answer for (all, one, or one resource's); the live set keeps them.
_LIVE = """
SELECT c.id, c.at, c.provider, c.operation, c.target, c.resource_id, c.kind, c.expires_at, c.sandbox,
       c.outcome, c.expires_action,
       CASE WHEN (SELECT s.operation FROM journal s
        WHERE s.provider = c.provider AND s.resource_id = c.resource_id AND s.id > c.id
          AND ((s.operation = 'stop_resource' AND s.outcome = 'ok')
               OR (s.operation = 'start_resource' AND s.outcome IN ('ok', 'unknown')))
        ORDER BY s.id DESC LIMIT 1) = 'stop_resource' THEN 1 ELSE 0 END,
       {GREATEST}(COALESCE((SELECT u.usd_per_hour FROM journal u
                            WHERE u.provider = c.provider AND u.resource_id = c.resource_id
                              AND u.effect = 'update' AND u.outcome = 'ok' AND u.usd_per_hour IS NOT NULL
                              AND u.id > c.id
                            ORDER BY u.id DESC LIMIT 1), c.usd_per_hour, -1),
                  COALESCE((SELECT MAX(u.usd_per_hour) FROM journal u
                            WHERE u.provider = c.provider AND u.resource_id = c.resource_id
                              AND u.effect = 'update' AND u.outcome = 'unknown' AND u.id > c.id), -1))
FROM journal c
WHERE c.effect = 'create' AND ({FILTER})
  AND (c.outcome = 'unknown' OR (c.outcome = 'ok' AND c.resource_id IS NOT NULL))
  AND COALESCE(c.kind, 'endpoint') IN ('endpoint', 'container', 'instance')
  AND NOT EXISTS (SELECT 1 FROM journal d
                  WHERE d.provider = c.provider AND d.resource_id = c.resource_id
                    AND d.effect = 'destroy' AND d.outcome = 'ok' AND d.id > c.id)
"""


# The rows that start, change, pause or end what a resource bills; {FILTER} picks one resource's.
_BILLING = """
SELECT id, at, provider, operation, effect, resource_id, usd_per_hour, kind, outcome FROM journal
WHERE ({FILTER})
  AND ((effect = 'create' AND (outcome = 'unknown' OR (outcome = 'ok' AND resource_id IS NOT NULL)))
       OR (effect IN ('update', 'destroy') AND outcome = 'ok'))
ORDER BY id
"""


def statements(script: str) -> list[str]:
    return [part.strip() for part in script.split(";") if part.strip()]
