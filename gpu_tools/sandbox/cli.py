"""`gpu-sandbox`: serve the provider emulator alone, e.g. to point your own code at it."""

from __future__ import annotations

import argparse
import sys

import uvicorn

from gpu_tools.sandbox.app import create_app
from gpu_tools.settings import Settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="gpu-sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--api-key", default="sandbox-key", help="the key every provider expects")
    parser.add_argument("--ready-after", type=float, default=3.0, help="seconds until resources run")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every answer")
    args = parser.parse_args(argv)
    base = f"http://{args.host}:{args.port}"
    sandboxed = Settings.model_construct().for_sandbox(base)
    env = {
        "NETMIND_BASE_URL": sandboxed.netmind_base_url,
        "SESTERCE_BASE_URL": sandboxed.sesterce_base_url,
        "NEBIUS_BASE_URL": sandboxed.nebius_base_url,
        "NEBIUS_INFERENCE_BASE_URL": sandboxed.nebius_inference_base_url or "",
        "NEOLINK_BASE_URL": sandboxed.neolink_base_url,
        "NEOLINK_NAMESPACE": sandboxed.neolink_namespace or "",
    }
    keys = "NETMIND_API_KEY SESTERCE_API_KEY NEBIUS_API_KEY NEOLINK_API_TOKEN".split()
    lines = [
        f"gpu-sandbox: serving the provider emulator on {base} (every provider's API key: {args.api_key!r})"
    ]
    lines += [f"  {name}={value}" for name, value in env.items()]
    lines += [f"  {name}={args.api_key}" for name in keys]
    lines += [
        f"  request log: {base}/_sandbox/requests   faults: POST {base}/_sandbox/faults",
        "  Ctrl-C to stop.",
    ]
    print("\n".join(lines), file=sys.stderr, flush=True)
    app = create_app(api_key=args.api_key, ready_after=args.ready_after, latency=args.latency)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
