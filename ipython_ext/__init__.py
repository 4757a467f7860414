"""The IPython front: `%gpu <subcommand>` and `%%gpu`, one subcommand per registry operation.

`%load_ext ipython_ext`, then `%gpu help`. Subcommands are the operation names with hyphens
(`%gpu list-offers`, `%gpu nebius-create-endpoint ...`) plus short aliases (`%gpu ls`). Arguments
come from the operation's input model: `provider` and `resource_id` are positional, everything else
is a `--flag`. A mutating subcommand prints its plan and asks y/N; `--yes` typed by the person skips
the question; with no stdin (nbclient, papermill) the answer is no. The async core runs on one
background event-loop thread owned by the extension, so cells never need `await`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shlex
import sys
import threading
import types
import typing
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any, Literal, TypeVar, get_args, get_origin

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand
from IPython.display import display
from pydantic import BaseModel
from traitlets import Integer

from gpu_tools.gate import Approve
from gpu_tools.operations import Operation
from gpu_tools.sandbox import SandboxServer
from gpu_tools.settings import Settings
from gpu_tools.toolkit import Toolkit
from ipython_ext.render import ProgressLine, Rendered

T = TypeVar("T")
_VARIABLE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\}")


class LoopThread:
    """One asyncio loop on a daemon thread: cells submit coroutines and wait; Ctrl-C cancels."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="gpu-tools-loop", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result()
        except KeyboardInterrupt:
            future.cancel()
            raise

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


class _HelpShown(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse that reports errors as one-line UsageErrors instead of exiting the kernel."""

    def error(self, message: str) -> typing.NoReturn:
        raise UsageError(f"{self.prog}: {message} (see %{self.prog} -h)")

    def exit(self, status: int = 0, message: str | None = None) -> typing.NoReturn:
        if message:
            print(message, file=sys.stderr)
        raise _HelpShown


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """(inner type, optional?) of `X | None`."""
    if get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return annotation, False


def _json_or_list(text: str) -> Any:
    text = text.strip()
    if text[:1] in "[{":
        try:
            return json.loads(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"not valid JSON: {exc}") from None
    return [part.strip() for part in text.split(",") if part.strip()]


def build_parser(op: Operation, prog: str) -> _Parser:
    """An argparse parser mirroring `op.input`: positional fields, `--flags`, choices, JSON for lists."""
    first = op.description.split(". ")[0].rstrip(".") + "."
    parser = _Parser(prog=prog, description=first, add_help=True)
    for name, field in op.input.model_fields.items():
        kind, _ = _unwrap(field.annotation)
        help_text = field.description or ""
        kwargs: dict[str, Any] = {"help": help_text}
        if get_origin(kind) is Literal:
            kwargs["choices"] = list(get_args(kind))
        elif kind is int:
            kwargs["type"] = int
        elif kind is float:
            kwargs["type"] = float
        elif kind is not str and kind is not bool:
            kwargs["type"] = _json_or_list
            kwargs["metavar"] = "JSON"
        if name in op.input.positional:
            parser.add_argument(name, **kwargs)
            continue
        flag = "--" + name.replace("_", "-")
        if kind is bool:
            if field.default is True:
                parser.add_argument(
                    "--no-" + name.replace("_", "-"), dest=name, action="store_false", help=help_text
                )
            else:
                parser.add_argument(flag, dest=name, action="store_true", help=help_text)
            continue
        if field.is_required():
            kwargs["required"] = True
        else:
            kwargs["default"] = None
        parser.add_argument(flag, dest=name, **kwargs)
    if op.mutating:
        parser.add_argument(
            "--yes", "-y", action="store_true", help="confirm without being asked (you, not an agent)"
        )
    return parser


def ask_human(question: str) -> bool:
    """y/N on stdin; no stdin (nbclient, papermill, pytest) means no."""
    try:
        answer = input(question)
    except Exception:  # StdinNotImplementedError, OSError, EOFError: nobody can answer
        print("No way to ask for confirmation here (no stdin): refused. Re-run with --yes to confirm.")
        return False
    return answer.strip().lower() in ("y", "yes")


@magics_class
class GpuMagics(Magics):
    display_limit = Integer(25, help="Rows shown per table; the rest are counted.").tag(config=True)

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell, **kwargs)
        self.runner = LoopThread()
        self.sandbox: SandboxServer | None = None
        self._toolkit: Toolkit | None = None
        self._parsers: dict[str, _Parser] = {}

    # ---- state ------------------------------------------------------------------------------
    @property
    def toolkit(self) -> Toolkit:
        if self._toolkit is None:
            self._toolkit = Toolkit(Settings())
        return self._toolkit

    def _replace_toolkit(self, tk: Toolkit) -> None:
        if self._toolkit is not None:
            self.runner.run(self._toolkit.aclose())
            self._toolkit.close()
        self._toolkit = tk
        self._parsers.clear()

    def close(self) -> None:
        if self._toolkit is not None:
            self.runner.run(self._toolkit.aclose())
            self._toolkit.close()
        if self.sandbox is not None:
            self.sandbox.stop()
        self.runner.stop()

    def operation_for(self, word: str) -> Operation:
        name = word.replace("-", "_")
        for op in self.toolkit.operations():
            if name == op.name or word in op.aliases or name in (a.replace("-", "_") for a in op.aliases):
                return op
        if self.toolkit.settings.read_only and any(op.name == name for op in self.toolkit.registry):
            raise UsageError(f"%gpu {word}: not available, this session is read-only.")
        raise UsageError(f"%gpu: unknown subcommand {word!r}. Try %gpu help.")

    # ---- the magic --------------------------------------------------------------------------
    @no_var_expand
    @line_cell_magic
    def gpu(self, line: str, cell: str | None = None) -> Any:
        """Run GPU cloud operations. `%gpu help` lists the subcommands."""
        line, cell = self._expand(line), self._expand(cell) if cell else cell
        try:
            argv = shlex.split(line) + (shlex.split(cell, comments=True) if cell else [])
        except ValueError as exc:
            raise UsageError(f"%gpu: {exc}") from None
        if not argv or argv[0] in ("help", "-h", "--help"):
            return self._help(argv[1:2])
        if argv[0] == "sandbox":
            return self._sandbox(argv[1:])
        op = self.operation_for(argv[0])
        parser = self._parser(op)
        try:
            ns = vars(parser.parse_args(argv[1:]))
        except _HelpShown:
            return None
        yes = bool(ns.pop("yes", False))
        args = {k: v for k, v in ns.items() if v is not None}
        return self._run(op, args, yes)

    def _expand(self, text: str) -> str:
        """Replace `{name}` / `{name.attr}` with the value of that notebook variable. Nothing else is
        expanded (no `$`, no expressions), so JSON arguments pass through untouched."""
        namespace = self.shell.user_ns if self.shell is not None else {}

        def value(match: re.Match[str]) -> str:
            root, *attrs = match.group(1).split(".")
            if root not in namespace:
                return match.group(0)
            obj = namespace[root]
            for attr in attrs:
                obj = getattr(obj, attr, None)
            return match.group(0) if obj is None else shlex.quote(str(obj))

        return _VARIABLE.sub(value, text)

    def _parser(self, op: Operation) -> _Parser:
        if op.name not in self._parsers:
            self._parsers[op.name] = build_parser(op, f"gpu {op.name.replace('_', '-')}")
        return self._parsers[op.name]

    def _run(self, op: Operation, args: dict[str, Any], yes: bool) -> Rendered:
        tk = self.toolkit
        if not op.mutating:
            handle = None

            async def progress(done: float, total: float | None, message: str) -> None:
                nonlocal handle
                text = ProgressLine(done, total, message)
                if handle is None:
                    handle = display(text, display_id=True)
                else:
                    handle.update(text)

            result = self.runner.run(tk.call(op.name, args, progress=progress))
            # A wait that answered "not yet" (reached=false) is asked again: a notebook has no client
            # timeout to fit, and Ctrl-C stops the wait. An explicit --timeout-seconds is kept.
            while getattr(result, "reached", None) is False and "timeout_seconds" not in args:
                result = self.runner.run(tk.call(op.name, args, progress=progress))
            return self._show(result)
        # Ask on this (the kernel's) thread: the gate reuses the plan shown for the same arguments.
        question = self.runner.run(tk.question(op.name, args))
        answer = False
        if question is not None:
            display(Rendered(question.plan, self.display_limit))
            if yes:
                print("Confirmed with --yes.")
                answer = True
            else:
                answer = ask_human("Send this request? [y/N] ")
        return self._show(
            self.runner.run(
                tk.call(op.name, args, confirmer=Approve(answer), asked_earlier=question is not None)
            )
        )

    def _show(self, result: BaseModel) -> Rendered:
        return Rendered(result, self.display_limit)

    # ---- built-in subcommands ----------------------------------------------------------------
    def _help(self, which: list[str]) -> None:
        if which:
            op = self.operation_for(which[0])
            self._parser(op).print_help()
            return None
        lines = ["%gpu SUBCOMMAND [args]   (%gpu SUBCOMMAND -h for its arguments)", ""]
        for title, mutating in (
            ("Reads (safe):", False),
            ("Changes (ask for confirmation; --yes to skip):", True),
        ):
            lines.append(title)
            for op in self.toolkit.operations():
                if op.mutating == mutating:
                    alias = f" ({', '.join(op.aliases)})" if op.aliases else ""
                    lines.append(f"  {op.name.replace('_', '-'):<28} {op.title}{alias}")
            lines.append("")
        lines.append(
            "  sandbox                      point this session at a local emulator of every provider"
        )
        print("\n".join(lines))
        return None

    def _sandbox(self, argv: list[str]) -> None:
        parser = _Parser(prog="gpu sandbox", description="Use a local emulator of every provider.")
        parser.add_argument("--ready-after", type=float, default=3.0, help="seconds resources take to start")
        parser.add_argument(
            "--stop", action="store_true", help="stop the sandbox and go back to real settings"
        )
        try:
            ns = parser.parse_args(argv)
        except _HelpShown:
            return None
        if self.sandbox is not None:
            self.sandbox.stop()
            self.sandbox = None
        if ns.stop:
            self._replace_toolkit(Toolkit(Settings()))
            print("Sandbox stopped; using your configured providers.")
            return None
        self.sandbox = SandboxServer(ready_after=ns.ready_after).start()
        self._replace_toolkit(Toolkit(Settings().for_sandbox(self.sandbox.url)))
        print(
            f"SANDBOX: every provider is emulated at {self.sandbox.url}; nothing here reaches a real cloud "
            "or costs money. %gpu sandbox --stop to leave."
        )
        return None


def load_ipython_extension(ipython: Any) -> None:
    magics = GpuMagics(ipython)
    ipython.register_magics(magics)
    ipython._gpu_magics = magics


def unload_ipython_extension(ipython: Any) -> None:
    magics = getattr(ipython, "_gpu_magics", None)
    if magics is not None:
        magics.close()
        del ipython._gpu_magics
