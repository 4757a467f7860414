"""The `%gpu` router: one subcommand per registry operation, run on the extension's loop thread.

Subcommands are the operation names with hyphens (`%gpu list-offers`) plus short aliases (`%gpu ls`).
A mutating subcommand prints its plan and asks y/N; `--yes` typed by the person skips the question
(never text that came from a `{variable}`); with no stdin (nbclient, papermill) the answer is no.
"""

from __future__ import annotations

import difflib
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TYPE_CHECKING, Any, TypeVar, get_args

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand
from IPython.display import display
from traitlets import Bool, Integer

from ipython_ext.arguments import POSITIONAL_NAMES, YES_FLAGS, _HelpShown, _Parser, build_parser
from ipython_ext.completion import Completer
from ipython_ext.variables import argv_of, tokenize

if TYPE_CHECKING:
    from gpu_tools.operations import Operation
    from gpu_tools.sandbox import SandboxServer
    from gpu_tools.toolkit import Toolkit

T = TypeVar("T")
PROGRESS_AFTER = 1.0  # seconds before a read shows live progress
ASK_ROUNDS = 3  # times a cell asks about a plan that keeps changing before it gives up, unsent


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
                    if tick is None:
                        raise RuntimeError("internal error: expected tick is not None") from None
                    tick(time.monotonic() - start)
        except KeyboardInterrupt:
            future.cancel()
            raise

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


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
        self.start = time.monotonic()
        self.kernel = getattr(shell, "kernel", None) is not None
        self.tty = not self.kernel and sys.stdout.isatty()

    async def report(self, done: float, total: float | None, message: str) -> None:
        self.text = message

    def tick(self, elapsed: float) -> None:
        if elapsed < PROGRESS_AFTER or not self.text or self.text == self.shown:
            return
        from ipython_ext.result import ProgressLine

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

    def done(self, result: Any = None) -> None:
        """Replace the live line with one final line saying what was reached and how long it took
        (cleared when the call failed or was interrupted: its error says the rest)."""
        final = final_line(result, time.monotonic() - self.start) if result is not None else ""
        if self.handle is not None:
            from ipython_ext.result import ProgressLine

            self.handle.update(ProgressLine(final))
        elif self.tty and self.shown:
            sys.stdout.write("\r\x1b[2K" + (final + "\n" if final else ""))
            sys.stdout.flush()


def final_line(result: Any, elapsed: float) -> str:
    """What a live status line leaves when its call ends."""
    if hasattr(result, "reached"):  # a wait
        state = f"{result.status}" + (f" ({result.raw_status})" if result.raw_status else "")
        verb = "reached" if result.reached else "not reached yet"
        return f"{result.provider} {result.resource_id}: {state}, {verb} after {elapsed:.0f}s."
    providers = getattr(result, "providers", None) or []
    answered = [p.provider for p in providers if p.status in ("ok", "partial")]
    others = [
        f"{p.provider} {p.status}" for p in providers if p.status not in ("ok", "partial", "unsupported")
    ]
    text = (
        f"{len(answered)} provider(s) answered in {elapsed:.0f}s" if providers else f"Done in {elapsed:.0f}s"
    )
    return text + (f" ({', '.join(others)})." if others else ".")


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
        self.completer = Completer(self)

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
        self.completer.clear()

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
        if self.toolkit.settings.read_only and any(
            name == op.name or word.lower() in op.aliases for op in self.toolkit.registry
        ):
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
        op: Operation | None = None
        try:
            tokens = tokenize(line, namespace) + (tokenize(cell, namespace, comments=True) if cell else [])
            words = [t.text for t in tokens]
            if tokens and tokens[0].from_variable:
                raise UsageError("%gpu: the subcommand must be typed, not taken from a {variable}.")
            if not words or words[0] in ("help", "-h", "--help"):
                return self._help(words[1:2])
            if words[0] == "sandbox":
                return self._sandbox(argv_of(tokens[1:], _Parser(prog="gpu sandbox")))
            op = self.operation_for(words[0])
            parser = self._parser(op)
            ns = vars(parser.parse_args(argv_of(tokens[1:], parser)))
            for name in POSITIONAL_NAMES:
                positional = ns.pop("_" + name, None)
                if positional is not None:
                    if ns.get(name) not in (None, positional):
                        raise UsageError(f"%{parser.prog}: {name} given twice ({positional!r} and --{name}).")
                    ns[name] = positional
            out = ns.pop("out", None)
            if out is not None and not out.isidentifier():
                raise UsageError(f"%{parser.prog}: --out needs a variable name, not {out!r}.")
        except _HelpShown:
            return None
        except UsageError as exc:
            self._journal_refusal(op, line, exc)
            raise
        from gpu_tools.errors import GpuToolsError

        # --yes counts only when the person typed it: never from a {variable}'s text.
        yes = bool(ns.pop("yes", False)) and any(not t.from_variable and t.text in YES_FLAGS for t in tokens)
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

    def _journal_refusal(self, op: Operation | None, line: str, exc: UsageError) -> None:
        """A change refused here for its input (a misspelled flag, a bad value, a `{variable}` that
        does not resolve, a read-only session) leaves its journal row, as through every front."""
        words, read_only = line.split(), op is None and self.toolkit.settings.read_only
        if op is None and words:  # refused before its subcommand was known: which one was typed?
            typed = words[0].lower()
            op = next(
                (o for o in self.toolkit.registry if typed.replace("-", "_") == o.name or typed in o.aliases),
                None,
            )
        if op is None or not op.mutating:
            return
        adapters = self.toolkit.adapters
        named = (p for w in words[1:] if (p := w.rpartition("=")[2].lower()) in adapters)
        provider = next(named, None)  # the journal row's provider, when one was typed
        reason = f"{'read_only' if read_only else 'invalid input'}: {exc}"
        gate = self.toolkit.gate
        self.runner.run(
            gate.journal_refusal(op, {"provider": provider} if provider else {}, reason, plan_it=False)
        )

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
        from gpu_tools.errors import PlanChanged
        from gpu_tools.gate import Approve
        from gpu_tools.models import Listing
        from ipython_ext.render import outcome_line, sort_items
        from ipython_ext.result import Rendered

        tk = self.toolkit
        if op.name == "list_offers":
            view.empty = self._no_offers(args)
        if not op.mutating:
            progress = Progress(self.shell)
            result = None
            try:
                result = self.runner.run(tk.call(op.name, args, progress=progress.report), progress.tick)
                # A wait that answered "not yet" (reached=false) is asked again: a notebook has no client
                # timeout to fit, and Ctrl-C stops the wait. An explicit --timeout-seconds is kept.
                while getattr(result, "reached", None) is False and "timeout_seconds" not in args:
                    result = self.runner.run(tk.call(op.name, args, progress=progress.report), progress.tick)
            finally:
                progress.done(result)
            if isinstance(result, Listing) and view.sort:
                result = result.model_copy(update={"items": sort_items(list(result.items), view.sort)})
                view.sort = None if self.autopandas else view.sort
            if self.autopandas and isinstance(result, Listing):
                frame = Rendered(result, view, self.words).to_dataframe()
                if "message" in frame.attrs:  # an empty frame still says why
                    print(frame.attrs["message"])
                return frame
            return Rendered(result, view, self.words)
        # Ask on this (the kernel's) thread: the gate reuses the plan shown for the same arguments.
        # A plan that changed before the send (a price read again) is asked again in this cell, old
        # -> new; `--yes` approved the plan it was typed for only, so the cell ends there, unsent.
        for round_ in range(1, ASK_ROUNDS + 1):
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
            try:
                result = self.runner.run(
                    tk.call(
                        op.name,
                        args,
                        confirmer=Approve(answer),
                        approval_id=question.approval.id if question else None,
                    )
                )
            except PlanChanged as changed:
                if yes or question is None or round_ == ASK_ROUNDS:
                    raise
                print(
                    f"The plan changed since you were asked: {changed.change}. Nothing was sent; asking again."
                )
                continue
            break
        print(self.words(outcome_line(result)))  # every change in a cell says what it did
        if result.plan.nothing_to_do and not result.plan.warnings:
            return None  # the outcome line said it all
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

    def _no_offers(self, args: dict[str, Any]) -> str:
        """What an empty offer listing says: the filters, the GPU names known, where to find offers."""
        from gpu_tools.gpus import GPU_MEMORY_GB

        given = " ".join(
            f"--{k.replace('_', '-')}" + ("" if v is True else f" {v}")
            for k, v in args.items()
            if v is not False and k not in ("refresh", "verbose")
        )
        text = "No GPU offers found" + (f" for {given}" if given else "") + "."
        if "gpu" in args:
            text += f" GPU models known here: {', '.join(sorted(GPU_MEMORY_GB))}."
        if not self.toolkit.settings.sandbox:
            text += " A provider without credentials lists nothing; %gpu sandbox emulates them all."
        return text

    def complete(self, event: Any) -> list[str]:
        """IPython completer for `%gpu` (event.text_until_cursor, event.symbol)."""
        return self.completer.complete(event.text_until_cursor, event.symbol)

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
