"""The IPython front: `%gpu <subcommand>` and `%%gpu`, one subcommand per registry operation.

`%load_ext ipython_ext`, then `%gpu help`. Subcommands are the operation names with hyphens
(`%gpu list-offers`, `%gpu nebius-create-endpoint ...`) plus short aliases (`%gpu ls`). Arguments
come from the operation's input model: `provider` and `resource_id` are positional, everything else
is a `--flag`. A mutating subcommand prints its plan and asks y/N; `--yes` typed by the person skips
the question (never text that came from a `{variable}`); with no stdin (nbclient, papermill) the
answer is no. The async core runs on one background event-loop thread owned by the extension, so
cells never need `await`.

Loading the extension imports only IPython: the core (providers, pydantic models, httpx, the
sandbox) is imported by the first `%gpu` call that needs it.
"""

from __future__ import annotations

import argparse
import difflib
import re
import shlex
import sys
import threading
import time
import types
import typing
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, get_args, get_origin

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand
from IPython.display import display
from traitlets import Bool, Integer

if TYPE_CHECKING:
    from gpu_tools.operations import Operation
    from gpu_tools.sandbox import SandboxServer
    from gpu_tools.toolkit import Toolkit

T = TypeVar("T")
YES_FLAGS = ("--yes", "-y")
PROGRESS_AFTER = 1.0  # seconds before a read shows live progress
POSITIONAL_NAMES = ("name",)  # positional in some input models; always also a --flag here

# `{name}`, `{name.attr}`, `{name[0]}`, `{name["key"]}`; `{{...}}` is a literal `{...}`.
_EXPR = r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*|\[-?\d+\]|\[\"[^\"\]]*\"\]|\['[^'\]]*'\])*"
_VARIABLE = re.compile(r"\{\{(" + _EXPR + r")\}\}|\{(" + _EXPR + r")\}")
_STEP = re.compile(r"\.([A-Za-z_]\w*)|\[(-?\d+)\]|\[\"([^\"\]]*)\"\]|\['([^'\]]*)'\]")


class LoopThread:
    """One asyncio loop on a daemon thread: cells submit coroutines and wait; Ctrl-C cancels."""

    def __init__(self) -> None:
        import asyncio

        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="gpu-tools-loop", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], tick: Callable[[float], None] | None = None) -> T:
        """Wait for `coro` on the loop thread; `tick(elapsed)` runs on this thread while it waits
        (live progress is drawn from the kernel's thread, so it lands in the right cell)."""
        import asyncio

        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        start = time.monotonic()
        try:
            while True:
                try:
                    return future.result(timeout=0.1 if tick else None)
                except FutureTimeout:
                    assert tick is not None
                    tick(time.monotonic() - start)
        except KeyboardInterrupt:
            future.cancel()
            raise

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


class _HelpShown(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse that reports errors as one-line UsageErrors (with a "did you mean") instead of exiting."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_abbrev=False, **kwargs)

    def error(self, message: str) -> typing.NoReturn:
        hint = ""
        unknown = re.match(r"unrecognized arguments: (\S+)", message)
        if unknown:
            flags = [s for a in self._actions for s in a.option_strings if s.startswith("--")]
            close = difflib.get_close_matches(unknown.group(1).split("=")[0], flags, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]}?" if close else ""
        raise UsageError(f"%{self.prog}: {message}{hint} (see %{self.prog} -h)")

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
    import json

    text = text.strip()
    if text[:1] in "[{":
        try:
            return json.loads(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"not valid JSON: {exc}") from None
    return [part.strip() for part in text.split(",") if part.strip()]


def _choice(choices: list[str]) -> Callable[[str], str]:
    """Case-insensitive choices: `NeBiUs` is `nebius`."""
    by_lower = {str(c).lower(): c for c in choices}

    def convert(text: str) -> str:
        return by_lower.get(text.lower(), text)

    return convert


def is_listing(op: Operation) -> bool:
    """Reads that return several items take --sort, --columns and --all-columns."""
    fields = getattr(op.output, "model_fields", {})
    return not op.mutating and ("items" in fields or "untracked" in fields)


def build_parser(op: Operation, prog: str, words: Callable[[str], str] = str) -> _Parser:
    """An argparse parser mirroring `op.input`: positional fields, `--flags`, choices, JSON for lists."""
    from gpu_tools.models import choices_of

    first = words(op.description.split(". ")[0].rstrip(".") + ".")
    parser = _Parser(prog=prog, description=first, add_help=True)
    fields = op.input.model_fields
    for name, field in fields.items():
        kind, _ = _unwrap(field.annotation)
        help_text = words(field.description or "").replace("%", "%%")  # argparse %-formats help
        kwargs: dict[str, Any] = {"help": help_text}
        choices = choices_of(kind, field.metadata)
        if choices is not None:
            kwargs["choices"] = choices
            kwargs["type"] = _choice(choices)
        elif kind is int:
            kwargs["type"] = int
        elif kind is float:
            kwargs["type"] = float
        elif kind is not str and kind is not bool:
            kwargs["type"] = _json_or_list
            kwargs["metavar"] = "JSON"
        flag = "--" + name.replace("_", "-")
        if name in op.input.positional and name not in POSITIONAL_NAMES:
            parser.add_argument(name, **kwargs)
            continue
        if kind is bool:
            if field.default is True:
                parser.add_argument(
                    "--no-" + name.replace("_", "-"), dest=name, action="store_false", help=help_text
                )
            else:
                parser.add_argument(flag, dest=name, action="store_true", help=help_text)
            continue
        flags = [flag]
        if name == "display_name" and "name" not in fields:
            flags.insert(0, "--name")  # the same flag for a resource's name on every provider
        if name in op.input.positional:  # `NAME` positionally still works, as the provider's own form
            parser.add_argument(
                "_" + name, nargs="?", default=None, metavar=name.upper(), help=argparse.SUPPRESS
            )
            kwargs["default"] = None
        elif field.is_required():
            kwargs["required"] = True
        else:
            kwargs["default"] = None
        parser.add_argument(*flags, dest=name, **kwargs)
    if is_listing(op):
        parser.add_argument("--sort", metavar="FIELD", help="sort by FIELD (-FIELD for descending)")
        parser.add_argument("--columns", metavar="A,B,C", help="the columns to show, in order")
        parser.add_argument("--all-columns", action="store_true", help="show every column")
    parser.add_argument("-o", "--out", metavar="NAME", help="also store the result in the variable NAME")
    if op.mutating:
        parser.add_argument(
            *YES_FLAGS,
            dest="yes",
            action="store_true",
            help="confirm without being asked (you, not an agent)",
        )
    return parser


# ---- {variables} ------------------------------------------------------------------------------
@dataclass
class Token:
    text: str
    literal_prefix: str  # the text before the first {variable} in this token (all of it if none)
    from_variable: bool


def resolve(expr: str, namespace: dict[str, Any]) -> str:
    """The text of `name`, `name.attr`, `name[0]`, `name["key"]` in the notebook's namespace."""
    root = re.match(r"[A-Za-z_]\w*", expr)
    assert root is not None
    if root.group(0) not in namespace:
        raise UsageError(f"%gpu: {{{expr}}}: no variable named {root.group(0)!r}; nothing was sent.")
    obj = namespace[root.group(0)]
    for step in _STEP.finditer(expr, root.end()):
        attr, index, key2, key1 = step.groups()
        try:
            if attr is not None:
                obj = getattr(obj, attr)
            elif index is not None:
                obj = obj[int(index)]
            else:
                obj = obj[key2 if key2 is not None else key1]
        except (AttributeError, LookupError, TypeError) as exc:
            raise UsageError(f"%gpu: {{{expr}}} cannot be resolved ({exc}); nothing was sent.") from None
    if obj is None:
        raise UsageError(f"%gpu: {{{expr}}} is None; nothing was sent.")
    return str(obj)


def tokenize(text: str, namespace: dict[str, Any], comments: bool = False) -> list[Token]:
    """Split like a shell, then put each {variable}'s value inside the one token it was written in.

    Values are substituted after splitting, so quotes, spaces or `--yes` in a value never make a
    second argument or a flag."""
    values: list[str] = []
    literals: list[str] = []

    def mark(match: re.Match[str]) -> str:
        if match.group(1) is not None:
            literals.append("{" + match.group(1) + "}")
            return f"\x01{len(literals) - 1}\x01"
        values.append(resolve(match.group(2), namespace))
        return f"\x00{len(values) - 1}\x00"

    marked = _VARIABLE.sub(mark, text)
    try:
        parts = shlex.split(marked, comments=comments)
    except ValueError as exc:
        raise UsageError(f"%gpu: {exc}") from None
    tokens = []
    for part in parts:
        prefix = part.split("\x00", 1)[0]
        restored = re.sub(r"\x00(\d+)\x00", lambda m: values[int(m.group(1))], part)
        restored = re.sub(r"\x01(\d+)\x01", lambda m: literals[int(m.group(1))], restored)
        prefix = re.sub(r"\x01(\d+)\x01", lambda m: literals[int(m.group(1))], prefix)
        tokens.append(Token(restored, prefix, "\x00" in part))
    return tokens


def argv_of(tokens: list[Token], parser: argparse.ArgumentParser) -> list[str]:
    """Arguments for argparse in which a variable's text can only ever be one argument value."""
    argv: list[str] = []
    for token in tokens:
        prev = argv[-1] if argv else ""
        action = parser._option_string_actions.get(prev)
        takes_value = action is not None and action.nargs != 0 and "=" not in prev
        if not token.from_variable:
            if takes_value and token.text.startswith("-") and token.text not in parser._option_string_actions:
                argv[-1] = f"{prev}={token.text}"  # `--sort -usd_per_hour`: a value, not a flag
            else:
                argv.append(token.text)
            continue
        if token.literal_prefix.startswith("-"):
            if "=" not in token.literal_prefix:
                raise UsageError(
                    f"%gpu: a {{variable}} cannot make a flag ({token.text!r}); nothing was sent."
                )
            argv.append(token.text)  # --flag={value}
            continue
        if takes_value:
            argv[-1] = f"{prev}={token.text}" if prev.startswith("--") else prev + token.text
            continue
        if token.text.startswith("-"):
            raise UsageError(
                f"%gpu: a {{variable}}'s value {token.text!r} would read as a flag; pass it to an option "
                "(e.g. --name {var}); nothing was sent."
            )
        argv.append(token.text)
    return argv


def ask_human(question: str) -> bool:
    """y/N on stdin: Ctrl-D or Ctrl-C mean no; no stdin (nbclient, papermill, pytest) means no."""
    try:
        answer = input(question)
    except (EOFError, KeyboardInterrupt):
        print("\nNo.")
        return False
    except Exception:  # StdinNotImplementedError, OSError: nobody can answer
        print("No way to ask for confirmation here (no stdin): refused. Re-run with --yes to confirm.")
        return False
    return answer.strip().lower() in ("y", "yes")


class Progress:
    """The latest progress message of a running call, shown from the kernel's thread after a second:
    updated in place in Jupyter, rewritten on one terminal line otherwise."""

    def __init__(self, shell: Any) -> None:
        self.text = ""
        self.shown = ""
        self.handle: Any = None
        self.kernel = getattr(shell, "kernel", None) is not None
        self.tty = not self.kernel and sys.stdout.isatty()

    async def report(self, done: float, total: float | None, message: str) -> None:
        self.text = message

    def tick(self, elapsed: float) -> None:
        if elapsed < PROGRESS_AFTER or not self.text or self.text == self.shown:
            return
        from ipython_ext.render import ProgressLine

        line = f"{self.text}  ({elapsed:.0f}s)"
        self.shown = self.text
        if self.kernel:
            if self.handle is None:
                self.handle = display(ProgressLine(line), display_id=True)
            else:
                self.handle.update(ProgressLine(line))
        elif self.tty:
            sys.stdout.write("\r\x1b[2K" + line)
            sys.stdout.flush()

    def done(self) -> None:
        if self.handle is not None:
            from ipython_ext.render import ProgressLine

            self.handle.update(ProgressLine(""))
        elif self.tty and self.shown:
            sys.stdout.write("\r\x1b[2K")
            sys.stdout.flush()


@magics_class
class GpuMagics(Magics):
    display_limit = Integer(25, help="Rows shown per table; the rest are counted.").tag(config=True)
    autopandas = Bool(False, help="Listings return pandas DataFrames instead of tables.").tag(config=True)

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell, **kwargs)
        self._runner: LoopThread | None = None
        self.sandbox: SandboxServer | None = None
        self._toolkit: Toolkit | None = None
        self._parsers: dict[str, _Parser] = {}
        self._ids: dict[str, tuple[float, list[str]]] = {}

    # ---- state ------------------------------------------------------------------------------
    @property
    def runner(self) -> LoopThread:
        """The event-loop thread, started by the first call that needs it (not at %load_ext)."""
        if self._runner is None:
            self._runner = LoopThread()
        return self._runner

    @property
    def toolkit(self) -> Toolkit:
        if self._toolkit is None:
            from gpu_tools.settings import load_settings
            from gpu_tools.toolkit import Toolkit

            self._toolkit = Toolkit(load_settings())
        return self._toolkit

    def _replace_toolkit(self, tk: Toolkit) -> None:
        if self._toolkit is not None:
            self.runner.run(self._toolkit.aclose())
            self._toolkit.close()
        self._toolkit = tk
        self._parsers.clear()
        self._ids.clear()

    def close(self) -> None:
        if self._toolkit is not None:
            self.runner.run(self._toolkit.aclose())
            self._toolkit.close()
        if self.sandbox is not None:
            self.sandbox.stop()
        if self._runner is not None:
            self._runner.stop()

    def command_of(self, op_name: str) -> str | None:
        """How a person types an operation here: `%gpu wait`, `%gpu rm`, `%gpu list-offers`."""
        for op in self.toolkit.registry:
            if op.name == op_name:
                return "%gpu " + (op.aliases[0] if op.aliases else op.name.replace("_", "-"))
        return None

    def words(self, text: str) -> str:
        """A core message in this front's words (operations named as `%gpu` subcommands)."""
        return self.toolkit.registry.words(text, self.command_of)

    def subcommands(self) -> dict[str, Operation]:
        names: dict[str, Operation] = {}
        for op in self.toolkit.operations():
            names[op.name.replace("_", "-")] = op
            for alias in op.aliases:
                names[alias] = op
        return names

    def operation_for(self, word: str) -> Operation:
        name = word.replace("-", "_").lower()
        for op in self.toolkit.operations():
            if name == op.name or word.lower() in op.aliases:
                return op
        if self.toolkit.settings.read_only and any(op.name == name for op in self.toolkit.registry):
            raise UsageError(f"%gpu {word}: not available, this session is read-only.")
        close = difflib.get_close_matches(word, [*self.subcommands(), "sandbox", "help"], n=1, cutoff=0.6)
        hint = f" Did you mean {close[0]!r}?" if close else " Try %gpu help."
        raise UsageError(f"%gpu: unknown subcommand {word!r}.{hint}")

    # ---- the magic --------------------------------------------------------------------------
    @no_var_expand
    @line_cell_magic
    def gpu(self, line: str, cell: str | None = None) -> Any:
        """Run GPU cloud operations. `%gpu help` lists the subcommands."""
        namespace = self.shell.user_ns if self.shell is not None else {}
        tokens = tokenize(line, namespace) + (tokenize(cell, namespace, comments=True) if cell else [])
        words = [t.text for t in tokens]
        if tokens and tokens[0].from_variable:
            raise UsageError("%gpu: the subcommand must be typed, not taken from a {variable}.")
        if not words or words[0] in ("help", "-h", "--help"):
            return self._help(words[1:2])
        if words[0] == "sandbox":
            return self._sandbox(argv_of(tokens[1:], _Parser(prog="gpu sandbox")))
        from gpu_tools.errors import GpuToolsError

        op = self.operation_for(words[0])
        parser = self._parser(op)
        argv = argv_of(tokens[1:], parser)
        try:
            ns = vars(parser.parse_args(argv))
        except _HelpShown:
            return None
        for name in POSITIONAL_NAMES:
            positional = ns.pop("_" + name, None)
            if positional is not None:
                if ns.get(name) not in (None, positional):
                    raise UsageError(f"%{parser.prog}: {name} given twice ({positional!r} and --{name}).")
                ns[name] = positional
        # --yes counts only when the person typed it: never from a {variable}'s text.
        yes = bool(ns.pop("yes", False)) and any(not t.from_variable and t.text in YES_FLAGS for t in tokens)
        out = ns.pop("out", None)
        if out is not None and not out.isidentifier():
            raise UsageError(f"%{parser.prog}: --out needs a variable name, not {out!r}.")
        view_args = {k: ns.pop(k, None) for k in ("sort", "columns", "all_columns")}
        args = {k: v for k, v in ns.items() if v is not None}
        try:
            view = self._view(op, view_args)
            result = self._run(op, args, yes, view)
        except KeyboardInterrupt:
            what = "waiting" if op.name == "wait_for_resource" else f"%gpu {words[0]}"
            print(f"Interrupted {what}: stopped here; nothing was cancelled at the provider.")
            return None
        except GpuToolsError as exc:
            exc.message, exc.hint = self.words(exc.message), exc.hint and self.words(exc.hint)
            exc.args = (str(exc),)
            raise
        if out is not None and self.shell is not None:
            self.shell.user_ns[out] = result
        return result

    def _view(self, op: Operation, flags: dict[str, Any]) -> Any:
        from ipython_ext.render import View, pick_columns, sort_key

        columns = [c.strip() for c in flags["columns"].split(",") if c.strip()] if flags["columns"] else None
        view = View(self.display_limit, columns, bool(flags["all_columns"]), flags["sort"])
        item = _item_model(op)
        if item is not None:  # check names now: a typo is an error before anything is fetched
            try:
                if view.sort:
                    sort_key(item, view.sort.lstrip("-"))
                pick_columns(item, view.columns, view.all_columns)
            except ValueError as exc:
                raise UsageError(f"%gpu {op.name.replace('_', '-')}: {exc}") from None
        return view

    def _parser(self, op: Operation) -> _Parser:
        if op.name not in self._parsers:
            self._parsers[op.name] = build_parser(op, f"gpu {op.name.replace('_', '-')}", self.words)
        return self._parsers[op.name]

    def _run(self, op: Operation, args: dict[str, Any], yes: bool, view: Any) -> Any:
        from gpu_tools.gate import Approve
        from gpu_tools.models import Listing
        from ipython_ext.render import Rendered, outcome_line, sort_items

        tk = self.toolkit
        if not op.mutating:
            progress = Progress(self.shell)
            try:
                result = self.runner.run(tk.call(op.name, args, progress=progress.report), progress.tick)
                # A wait that answered "not yet" (reached=false) is asked again: a notebook has no client
                # timeout to fit, and Ctrl-C stops the wait. An explicit --timeout-seconds is kept.
                while getattr(result, "reached", None) is False and "timeout_seconds" not in args:
                    result = self.runner.run(tk.call(op.name, args, progress=progress.report), progress.tick)
            finally:
                progress.done()
            if isinstance(result, Listing) and view.sort:
                result = result.model_copy(update={"items": sort_items(list(result.items), view.sort)})
                view.sort = None if self.autopandas else view.sort
            if self.autopandas and isinstance(result, Listing):
                return result.to_dataframe()
            return Rendered(result, view, self.words)
        # Ask on this (the kernel's) thread: the gate reuses the plan shown for the same arguments.
        question = self.runner.run(tk.question(op.name, args, client="%gpu"))
        answer = False
        if question is not None:
            display(Rendered(question.plan, view, self.words))
            if question.on_the_page:
                answer = self._wait_for_the_page(question)
            elif yes:
                print("Confirmed with --yes.")
                answer = True
            else:
                answer = ask_human("Send this request? [y/N] ")
        result = self.runner.run(
            tk.call(
                op.name,
                args,
                confirmer=Approve(answer),
                approval_id=question.approval.id if question else None,
            )
        )
        print(self.words(outcome_line(result)))  # every change in a cell says what it did
        if result.plan.operation == "reap_expired" and not result.plan.steps and not result.plan.warnings:
            return None  # "Nothing has expired." said it all
        return Rendered(result, view, self.words)

    def _wait_for_the_page(self, question: Any) -> bool:
        """approval=page/passkey: the cell shows the link and the one-time sign-in code (here only the
        person at this notebook sees it) and waits, with a live status line, for the decision on the
        page (Ctrl-C stops waiting; nothing is sent without an approval). --yes is not enough."""
        import html

        approvals = self.toolkit.approvals
        approval = question.approval

        def show(line: str) -> None:
            url = approvals.link(approval.id)
            text = f"Approve on the approval page ({question.mode}): {line}"
            link = f'<a href="{html.escape(url)}" target="_blank" rel="noreferrer">{html.escape(url)}</a>'
            markup = html.escape(text).replace(html.escape(url), link)
            display({"text/plain": text, "text/html": f"<p>{markup}</p>"}, raw=True)

        if approvals.announce(approval, show=show) is None:
            print(f"Waiting for approval {approval.id} on the approval page: {approvals.link(approval.id)}")
        progress = Progress(self.shell)
        left = max(0.0, (approval.expiry - self.toolkit.now()).total_seconds())
        try:
            decided = self.runner.run(approvals.wait(approval.id, left, progress.report), progress.tick)
        finally:
            progress.done()
        state = decided.status or ("expired" if decided.expired else "pending")
        print(
            f"Approval {approval.id}: {state}" + (f" by {decided.decided_by}" if decided.decided_by else "")
        )
        return decided.status == "approved"

    # ---- completion -------------------------------------------------------------------------
    def complete(self, event: Any) -> list[str]:
        """IPython completer for `%gpu`: subcommands and aliases, flags, choices, provider names and
        live resource ids where a positional expects them."""
        before = event.text_until_cursor
        body = re.sub(r"^\s*%{0,2}gpu\s*", "", before)
        parts = body.split()
        if not body.endswith(" "):
            parts = parts[:-1]
        if not parts:
            return sorted([*self.subcommands(), "help", "sandbox"])
        if parts[0] == "sandbox":
            return ["--ready-after", "--stop", "--fresh"]
        if parts[0] == "help":
            return sorted(self.subcommands())
        try:
            op = self.operation_for(parts[0])
        except UsageError:
            return []
        parser = self._parser(op)
        flags = sorted(s for a in parser._actions for s in a.option_strings if s.startswith("--"))
        last = parts[-1] if len(parts) > 1 else ""
        action = parser._option_string_actions.get(last)
        if action is not None and action.nargs != 0:
            return [str(c) for c in action.choices] if action.choices else []
        positionals = [a for a in parser._actions if not a.option_strings and a.dest != "help"]
        given = [p for p in parts[1:] if not p.startswith("-")]
        # values of flags are not positionals
        for i, p in enumerate(parts[1:], 1):
            act = parser._option_string_actions.get(parts[i - 1])
            if act is not None and act.nargs != 0 and p in given:
                given.remove(p)
        if len(given) < len(positionals) and not event.symbol.startswith("-"):
            target = positionals[len(given)]
            if target.choices:
                return [str(c) for c in target.choices]
            if target.dest == "resource_id" and given:
                return self._resource_ids(given[0])
        return flags

    def _resource_ids(self, provider: str) -> list[str]:
        """Ids of the provider's resources, asked at most every 30 s and never for longer than 3 s."""
        hit = self._ids.get(provider)
        if hit is not None and time.monotonic() - hit[0] < 30:
            return hit[1]
        import asyncio

        try:
            listing = self.runner.run(
                asyncio.wait_for(self.toolkit.call("list_resources", {"provider": provider}), 3)
            )
            ids = [r.resource_id for r in listing.items]  # type: ignore[attr-defined]
        except Exception:  # completion must never raise: no ids is a fine answer
            ids = []
        self._ids[provider] = (time.monotonic(), ids)
        return ids

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
        lines.append("")
        lines.append(
            "Listings take --sort FIELD, --columns a,b,c and --all-columns; every subcommand -o NAME."
        )
        print("\n".join(lines))
        return None

    def _sandbox(self, argv: list[str]) -> None:
        from gpu_tools.sandbox import SandboxServer
        from gpu_tools.settings import load_settings
        from gpu_tools.toolkit import Toolkit

        parser = _Parser(prog="gpu sandbox", description="Use a local emulator of every provider.")
        parser.add_argument("--ready-after", type=float, default=None, help="seconds resources take to start")
        parser.add_argument("--fresh", action="store_true", help="start a new, empty emulator")
        parser.add_argument(
            "--stop", action="store_true", help="stop the sandbox and go back to real settings"
        )
        try:
            ns = parser.parse_args(argv)
        except _HelpShown:
            return None
        if self.sandbox is not None and not ns.stop and not ns.fresh:
            if ns.ready_after is not None:
                self.sandbox.sandbox.ready_after = ns.ready_after
            print(
                f"SANDBOX: still running at {self.sandbox.url} with its resources "
                "(%gpu sandbox --fresh for an empty one, --stop to leave)."
            )
            return None
        if self.sandbox is not None:
            self.sandbox.stop()
            self.sandbox = None
        if ns.stop:
            self._replace_toolkit(Toolkit(load_settings()))
            print("Sandbox stopped; using your configured providers.")
            return None
        ready_after = 3.0 if ns.ready_after is None else ns.ready_after
        self.sandbox = SandboxServer(ready_after=ready_after).start()
        self._replace_toolkit(Toolkit(load_settings().for_sandbox(self.sandbox.url)))
        print(
            f"SANDBOX: every provider is emulated at {self.sandbox.url}; nothing here reaches a real cloud "
            "or costs money. %gpu sandbox --stop to leave."
        )
        return None


def _item_model(op: Operation) -> Any:
    """The item type of a listing operation (Offer for list_offers), or None."""
    field = getattr(op.output, "model_fields", {}).get("items")
    if field is None:
        return None
    args = get_args(field.annotation)
    return args[0] if args and isinstance(args[0], type) else None


def completion_matcher(magics: GpuMagics) -> Any:
    """An IPython (v2 API) matcher for `%gpu` lines; it suppresses the other matchers there, so Tab
    offers subcommands, flags and values rather than Python names."""
    from IPython.core.completer import CompletionContext, SimpleCompletion, context_matcher

    @context_matcher(identifier="gpu_tools.magic")
    def match(context: CompletionContext) -> Any:
        lines = context.full_text.split("\n")
        row = lines[context.cursor_line] if context.cursor_line < len(lines) else ""
        before = row[: context.cursor_position]
        if not re.match(r"\s*%{1,2}gpu\s", before):
            return {"completions": [], "suppress": False}
        word = before.rsplit(None, 1)[-1] if before and not before[-1].isspace() else ""
        try:
            found = magics.complete(types.SimpleNamespace(text_until_cursor=before, symbol=word))
        except Exception:  # completion must never raise into the prompt
            found = []
        hits = [f for f in found if f.lower().startswith(word.lower())]
        return {
            "completions": [SimpleCompletion(text=h) for h in hits],
            "suppress": bool(hits),
            "matched_fragment": word,
        }

    return match


def load_ipython_extension(ipython: Any) -> None:
    magics = GpuMagics(ipython)
    ipython.register_magics(magics)
    ipython.Completer.custom_matchers.append(completion_matcher(magics))
    ipython._gpu_magics = magics


def unload_ipython_extension(ipython: Any) -> None:
    magics = getattr(ipython, "_gpu_magics", None)
    if magics is not None:
        ipython.Completer.custom_matchers[:] = [
            m
            for m in ipython.Completer.custom_matchers
            if getattr(m, "matcher_identifier", "") != "gpu_tools.magic"
        ]
        magics.close()
        del ipython._gpu_magics
