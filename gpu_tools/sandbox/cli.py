"""`gpu-sandbox`: serve the provider emulator alone, e.g. to point your own code at it."""

from __future__ import annotations

import argparse
import sys

import uvicorn

from gpu_tools.providers.declare import sandbox_env
from gpu_tools.sandbox.app import create_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="gpu-sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--api-key", default="sandbox-key", help="the key every provider expects")
    parser.add_argument("--ready-after", type=float, default=3.0, help="seconds until resources run")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every answer")
    args = parser.parse_args(argv)
    base = f"http://{args.host}:{args.port}"
    lines = [
        f"gpu-sandbox: serving the provider emulator on {base} (every provider's API key: {args.api_key!r})"
    ]
    lines += [f"  {name}={value}" for name, value in sandbox_env(base, args.api_key).items()]
    lines += [
        f"  request log: {base}/_sandbox/requests   faults: POST {base}/_sandbox/faults",
        "  Ctrl-C to stop.",
    ]
    print("\n".join(lines), file=sys.stderr, flush=True)
    app = create_app(api_key=args.api_key, ready_after=args.ready_after, latency=args.latency)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
