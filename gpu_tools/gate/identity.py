"""What a plan and a call are, for the gate's bookkeeping: the identity of a call's arguments (the
key of its approvals and idempotency), the digest of the plan a person approves, and how two plans
differ when the one read again at the send is not the approved one."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import SecretBytes, SecretStr

from gpu_tools.models import Plan, plain
from gpu_tools.operations import MutationInput, Operation


def _reveal(value: Any) -> Any:
    if isinstance(value, SecretStr | SecretBytes):
        return value.get_secret_value()
    return str(value)


def fingerprint(
    op: Operation, data: MutationInput, *, exclude: tuple[str, ...] = ("dry_run",), user: str | None = None
) -> str:
    """Identity of a call's arguments, secrets included by value (hashed, never stored), so two calls
    that differ only in a password never share a plan. With `user`, an approval's key: two users
    asking for the same thing at once on a shared journal never answer each other's question."""
    payload = json.dumps(
        data.model_dump(mode="python", exclude=set(exclude)), default=_reveal, sort_keys=True
    )
    return op.name + ":" + hashlib.sha256(payload.encode()).hexdigest() + (f":{user}" if user else "")


def args_hash(op: Operation, data: MutationInput) -> str:
    """What an idempotency key is bound to: the arguments, less the key itself and dry_run."""
    return fingerprint(op, data, exclude=("dry_run", "idempotency_key"))


def plan_digest(plan: Plan) -> str:
    """What a person approves: provider, operation, target, the request, its cost and reach. The
    expiry's clock time is left out (its duration is in the arguments), so a plan rebuilt a minute
    later for the same arguments is still the plan that was approved."""

    def core(p: Plan) -> dict[str, Any]:
        return {
            "provider": p.provider,
            "operation": p.operation,
            "target": p.target,
            "method": p.method,
            "path": p.path,
            "body": p.body,
            "usd": [p.usd_per_hour, p.usd_per_hour_max],
            "gpus": [p.gpus, p.gpu_name],
            "reversible": p.reversible,
            "steps": [core(s) for s in p.steps],
        }

    return hashlib.sha256(json.dumps(core(plan), sort_keys=True, default=str).encode()).hexdigest()


def cost_text(plan: Plan, places: int = 2) -> str:
    low, high = plan.usd_per_hour, plan.usd_per_hour_max
    if low is None and high is None:
        return "an unknown price"
    if high is not None and low is not None and high != low:
        return f"${low:.{places}f}-${high:.{places}f}/hour"
    return f"${(high if high is not None else low):.{places}f}/hour"


def describe_change(old: Plan, new: Plan) -> str:
    """What differs between the approved plan and the one read just now, old -> new, price first
    (with as many decimals as it takes to see the prices differ: $3.500 -> $3.504)."""
    parts = []
    if (old.usd_per_hour, old.usd_per_hour_max) != (new.usd_per_hour, new.usd_per_hour_max):
        # (not at all when no decimals show it: a maximum now stated equal to the price, say)
        places = next((n for n in range(2, 7) if cost_text(old, n) != cost_text(new, n)), None)
        if places is not None:
            parts.append(f"price {cost_text(old, places)} -> {cost_text(new, places)}")
    if old.target != new.target:
        parts.append(f"target {old.target} -> {new.target}")
    if (old.gpus, old.gpu_name) != (new.gpus, new.gpu_name):
        parts.append(f"GPUs {old.gpus}x {old.gpu_name} -> {new.gpus}x {new.gpu_name}")
    if (old.method, old.path) != (new.method, new.path):
        parts.append(f"request {old.method} {old.path} -> {new.method} {new.path}")
    if old.body != new.body:
        parts.append("the request body")
    if old.reversible != new.reversible:
        parts.append("reversibility")
    return plain(", ".join(parts) or f"what is sent (now {cost_text(new)}: {new.action})")


def plan_cost(plan: Plan) -> float | None:
    """The hourly figure policy uses: the maximum-scale one when there is one."""
    return plan.usd_per_hour_max if plan.usd_per_hour_max is not None else plan.usd_per_hour
