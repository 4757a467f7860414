"""%gpu results as data, tables in pandas' manner, cards, completion, variables and the notebook's
words: each through a real InteractiveShell against the sandbox."""

from __future__ import annotations

import asyncio
import builtins
import re
import threading

import httpx
import pandas as pd
import pytest
from IPython.core.completer import provisionalcompleter
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from wcwidth import wcswidth

from gpu_tools.errors import ConfirmationRefused, NotFound
from gpu_tools.models import Listing, Offer
from gpu_tools.sandbox import SandboxServer
from gpu_tools.toolkit import Toolkit
from tests.conftest import mutating_requests, new_shell, sandbox_settings

CREATE = (
    "nebius-create-endpoint --name nb --model-name openai/gpt-oss-20b --flavor-name base "
    "--gpu-type gpu-h100-sxm --max-replicas 2"
)


def gpu(shell: InteractiveShell, line: str):
    return shell.run_line_magic("gpu", line)


def complete(shell: InteractiveShell, line: str) -> list[str]:
    with provisionalcompleter():  # what a terminal or Jupyter asks on Tab
        return [c.text for c in shell.Completer.completions(line, len(line))]


# ---- results are data -------------------------------------------------------------------------
def test_listing_is_a_sequence_with_a_dataframe(shell: InteractiveShell) -> None:
    r = gpu(shell, "list-offers --gpu H100 --sort usd_per_hour")
    assert len(r) > 0
    prices = [o.usd_per_hour for o in r if o.usd_per_hour is not None]
    assert r[0].usd_per_hour == min(prices)
    assert all(isinstance(o, Offer) for o in r)
    assert [o.offer_id for o in r[:2]] == [r[0].offer_id, r[1].offer_id] and len(r[:2]) == 2
    frame = r.to_dataframe()
    assert isinstance(frame, pd.DataFrame) and len(frame) == len(r)
    assert list(frame["usd_per_hour"][:1]) == [r[0].usd_per_hour]
    assert r.to_dicts()[0]["offer_id"] == r[0].offer_id


def test_descending_sort_puts_unknown_last(shell: InteractiveShell) -> None:
    r = gpu(shell, "list-offers --gpu H100 --sort -usd_per_hour")
    known = [o.usd_per_hour for o in r if o.usd_per_hour is not None]
    assert known == sorted(known, reverse=True)
    assert r[len(known) - 1].usd_per_hour is not None and r[len(r) - 1].usd_per_hour is None
    with pytest.raises(UsageError, match="cannot sort by 'bogus'"):
        gpu(shell, "list-offers --sort bogus")


def test_listing_model_without_pandas_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_pandas(name: str, *args, **kwargs):
        if name == "pandas":
            raise ImportError("no pandas")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pandas)
    with pytest.raises(ImportError, match=r"gpu-tools\[pandas\]"):
        Listing[Offer](items=[], total=0).to_dataframe()


def test_autopandas_and_out_variable(shell: InteractiveShell) -> None:
    shell.run_line_magic("config", "GpuMagics.autopandas = True")
    frame = gpu(shell, "list-offers --gpu H100 --sort usd_per_hour -o cheap")
    assert isinstance(frame, pd.DataFrame) and frame.iloc[0]["usd_per_hour"] == frame["usd_per_hour"].min()
    assert shell.user_ns["cheap"] is frame
    shell.run_line_magic("config", "GpuMagics.autopandas = False")
    gpu(shell, "regions --out regs")
    assert len(shell.user_ns["regs"]) > 0


def test_mutation_result_exposes_resource_plan_outcome(shell: InteractiveShell) -> None:
    created = gpu(shell, CREATE + " --yes")
    assert created.outcome == "done" and created.plan.provider == "nebius"
    assert created.resource.resource_id.startswith("dep-")
    with pytest.raises(TypeError):
        len(created)


# ---- tables -----------------------------------------------------------------------------------
def test_offers_table_fits_120_columns_with_cjk_aligned(shell: InteractiveShell) -> None:
    shell.run_line_magic("config", "GpuMagics.display_limit = 100")
    text = repr(gpu(shell, "list-offers"))
    lines = text.splitlines()
    assert max(wcswidth(line) for line in lines) <= 120
    header = next(line for line in lines if line.startswith("provider"))
    assert "$/GPU-h" in header and "available" in header and "id" in header
    rows = [line for line in lines if line.startswith(("neolink", "netmind", "sesterce", "nebius"))]
    cjk = [line for line in rows if "北京一区" in line or "上海二区" in line]
    assert cjk, "the sandbox has NeoLink regions with CJK names"
    # the $/h column ends at the same display column on every row, CJK or not
    ends = {wcswidth(line[: m.end()]) for line in rows if (m := re.search(r"(~?\$[\d,.]+|unknown)", line))}
    assert len(ends) == 1


def test_money_estimates_and_unknowns(shell: InteractiveShell) -> None:
    text = repr(gpu(shell, "list-offers --gpu H100 --sort usd_per_hour"))
    assert re.search(r"~\$\d+\.\d\d\b", text)  # NeoLink's CNY price, converted
    assert text.count("~ estimated: converted to USD from CNY") == 1
    assert "unknown" in text  # Nebius publishes no price
    assert "sorted by usd_per_hour" in text.splitlines()[0]
    assert "$2.49" in text and "2.4900" not in text


def test_columns_all_columns_and_captions(shell: InteractiveShell) -> None:
    few = repr(gpu(shell, "list-offers --columns provider,offer_id,usd_per_hour"))
    header = next(line for line in few.splitlines() if line.startswith("provider"))
    assert header.split() == ["provider", "id", "$/h"]
    every = repr(gpu(shell, "list-offers --all-columns"))
    assert "vcpu" in every and "price_estimated" in every
    page = gpu(shell, "list-offers")._repr_html_()
    assert "<caption" in page and "text-align:right" in page
    with pytest.raises(UsageError, match="no column nope"):
        gpu(shell, "list-offers --columns provider,nope")


def test_empty_results_are_sentences(shell: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> None:
    assert repr(gpu(shell, "ls")).endswith("No resources found.")
    assert gpu(shell, "reap --dry-run") is None
    assert "Nothing has expired." in capsys.readouterr().out
    spend = repr(gpu(shell, "spend"))
    assert "Nothing is running." in spend


def test_pages_render_as_tables_not_json(shell: InteractiveShell) -> None:
    text = repr(gpu(shell, "netmind-list-images"))
    assert "Netmind images (" in text and "image_id" in text and '[{"' not in text


def test_long_free_text_is_cut_in_the_middle_but_urls_are_not(shell: InteractiveShell) -> None:
    from ipython_ext.render import Column, Table

    url = "https://example.com/" + "a" * 80
    table = Table("t", [Column("url", "url", "id"), Column("name", "name")], [_Row(url, "x" * 80)])
    assert url in table.text()
    cut = table.rows[0][1]
    assert "…" in cut and cut.startswith("x") and cut.endswith("x") and wcswidth(cut) <= 32


class _Row:
    def __init__(self, url: str, name: str) -> None:
        self.url, self.name = url, name


def test_spend_shows_unknown_prices_as_unknown(shell: InteractiveShell) -> None:
    created = gpu(shell, CREATE + " --yes")
    text = repr(gpu(shell, "spend"))
    row = next(line for line in text.splitlines() if created.resource.resource_id in line)
    assert "unknown" in row and "$0.00" not in row
    per_provider = text.split("Spend per provider")[1].splitlines()[3]
    assert "unknown" in per_provider and "$0.00" not in per_provider


# ---- cards and outcome lines ------------------------------------------------------------------
def test_every_change_in_a_cell_prints_its_outcome_and_cards_are_short(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    created = gpu(shell, CREATE + " --yes")
    rid = created.resource.resource_id
    capsys.readouterr()
    shell.run_cell(
        f"%gpu scale nebius {rid} --max-replicas 3 --yes\n%gpu stop nebius {rid} --yes\n%gpu rm nebius {rid} --yes"
    )
    out = capsys.readouterr().out
    assert out.count("Done:") == 3
    card = repr(created)
    assert len(card.splitlines()) <= 10 and "{" not in card
    for word in ("what", "where", "status", "cost", "id"):
        assert re.search(rf"^\s+{word}\s", card, re.M)


# ---- completion and did-you-mean --------------------------------------------------------------
def test_completion_of_subcommands_flags_choices_providers_and_ids(
    shell: InteractiveShell, sandbox: SandboxServer
) -> None:
    assert {"list-offers", "list-resources", "list-regions"} <= set(complete(shell, "%gpu li"))
    assert "ls" in complete(shell, "%gpu l")
    assert complete(shell, "%gpu list-offers --g") == ["--gpu"]
    # offers rent endpoints, containers or instances (registries, auths and images are not offers)
    assert set(complete(shell, "%gpu list-offers --kind ")) == {"endpoint", "container", "instance"}
    assert "nebius" in complete(shell, "%gpu get ")
    rid = gpu(shell, CREATE + " --yes").resource.resource_id
    assert rid in complete(shell, "%gpu get nebius ")
    assert mutating_requests(sandbox)[-1]["method"] == "POST"  # completion itself sent nothing


def test_did_you_mean(shell: InteractiveShell) -> None:
    with pytest.raises(UsageError, match="Did you mean 'list-offers'"):
        gpu(shell, "list-ofers")
    with pytest.raises(UsageError, match="did you mean --gpu"):
        gpu(shell, "list-offers --gppu H100")


def test_choices_are_case_insensitive(shell: InteractiveShell) -> None:
    assert all(o.provider == "nebius" for o in gpu(shell, "list-offers --provider NeBiUs"))


def test_name_is_the_same_flag_everywhere(shell: InteractiveShell, sandbox: SandboxServer) -> None:
    neolink = gpu(
        shell,
        "neolink-create-instance --name same --image docker.io/library/ubuntu:22.04 --gpu-sku-id 88 --dry-run",
    )
    assert neolink.plan.body["displayName"] == "same"
    sesterce = gpu(
        shell,
        "sesterce-create-endpoint --name same --model-id llama-3.1-8b-instruct "
        "--hardware-id dc172cc8-0035-4527-958b-775f951e8836 --regions 18 --dry-run",
    )
    assert sesterce.plan.body["name"] == "same"
    assert mutating_requests(sandbox) == []


# ---- variables --------------------------------------------------------------------------------
def test_variables_with_attributes_indexes_and_keys(shell: InteractiveShell) -> None:
    created = gpu(shell, CREATE + " --yes")
    rid = created.resource.resource_id
    shell.user_ns.update(ep=created, ids=[rid], d={"id": rid})
    for ref in ("{ep.resource.resource_id}", "{ids[0]}", '{d["id"]}', "{d['id']}"):
        assert gpu(shell, f"get nebius {ref}").resource_id == rid


def test_unresolvable_variables_are_one_line_errors(shell: InteractiveShell, sandbox: SandboxServer) -> None:
    with pytest.raises(UsageError, match=r"\{undefined\}: no variable named 'undefined'"):
        gpu(shell, "rm nebius {undefined} --yes")
    shell.user_ns["ids"] = []
    with pytest.raises(UsageError, match=r"\{ids\[0\]\} cannot be resolved"):
        gpu(shell, "rm nebius {ids[0]} --yes")
    assert sandbox.sandbox.requests == []


@pytest.mark.parametrize(
    "value",
    ["--yes", "-y", "x --yes", "'x' --yes", '" --yes', "--yes=true", "--dry-run", "nb --yes --no-x"],
)
def test_a_variable_can_never_say_yes(
    shell: InteractiveShell, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    created = gpu(shell, CREATE + " --yes")
    rid = created.resource.resource_id
    sandbox.sandbox.requests.clear()
    asked: list[str] = []
    monkeypatch.setattr("builtins.input", lambda prompt="": asked.append(prompt) or "n")
    shell.user_ns.update(v=value, rid=rid)
    for line in (f"rm nebius {rid} {{v}}", "rm nebius {rid} {v}", "rm nebius {rid} --{v}", "rm {v} {rid}"):
        try:
            gpu(shell, line)
        except (UsageError, ConfirmationRefused, NotFound):
            pass
    # a value as an option's value stays one argument, and the question is still asked
    with pytest.raises(ConfirmationRefused):
        gpu(shell, f"scale nebius {rid} --name {{v}} --max-replicas 3")
    assert asked, "the y/N question was asked"
    assert mutating_requests(sandbox) == []


# ---- the notebook's words, Ctrl-C and Ctrl-D ---------------------------------------------------
def test_hints_name_magics_not_mcp_tools(shell: InteractiveShell, sandbox: SandboxServer) -> None:
    with pytest.raises(NotFound) as missing:
        gpu(shell, "get nebius dep-missing")
    assert "%gpu ls" in missing.value._render_traceback_()[0]
    assert "list_resources" not in str(missing.value)
    created = gpu(shell, CREATE + " --yes")
    sandbox.sandbox.ready_after = 60
    late = gpu(shell, f"wait nebius {created.resource.resource_id} --timeout-seconds 0.2 --poll-seconds 0.05")
    assert late.reached is False
    assert "%gpu wait" in repr(late) and "wait_for_resource" not in repr(late)
    plan = repr(gpu(shell, CREATE.replace("nb", "nb2") + " --expires-in 1h --dry-run"))
    assert "%gpu reap" in plan and "reap_expired" not in plan


def test_mcp_keeps_tool_names_from_the_same_place(tk) -> None:
    from gpu_tools.toolkit import registry

    text = "See list_resources; call `spend` or wait_for_resource."
    assert registry().words(text, lambda op: None) == text
    assert (
        registry().words(text, lambda op: f"<{op}>")
        == "See <list_resources>; call <spend> or <wait_for_resource>."
    )
    assert (
        registry().words("resource_id and /v1/list_things", lambda op: "X")
        == "resource_id and /v1/list_things"
    )


def test_ctrl_c_during_wait_is_one_line(
    shell: InteractiveShell, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    created = gpu(shell, CREATE + " --yes")
    magics = shell._gpu_magics

    real_run, pressed = magics.runner.run, []

    def interrupted(coro, tick=None):
        if pressed:
            return real_run(coro, tick)
        pressed.append(True)  # Ctrl-C once, while the wait runs
        coro.close()
        raise KeyboardInterrupt

    monkeypatch.setattr(magics.runner, "run", interrupted)
    capsys.readouterr()
    assert gpu(shell, f"wait nebius {created.resource.resource_id}") is None
    out = capsys.readouterr().out.strip().splitlines()
    assert out == ["Interrupted waiting: stopped here; nothing was cancelled at the provider."]


@pytest.mark.parametrize("key", [EOFError, KeyboardInterrupt])
def test_ctrl_d_or_ctrl_c_at_the_question_means_no(
    shell: InteractiveShell, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch, capsys, key
) -> None:
    def press(prompt: str = "") -> str:
        raise key

    monkeypatch.setattr("builtins.input", press)
    with pytest.raises(ConfirmationRefused):
        gpu(shell, CREATE)
    out = capsys.readouterr().out
    assert "no stdin" not in out and "No." in out
    assert mutating_requests(sandbox) == []


# ---- patience: progress, the sandbox kept --------------------------------------------------------
class HoldsSesterce(httpx.AsyncBaseTransport):
    """A toolkit's transport that holds Sesterce's answers (on the toolkit's loop thread) until the test
    sets `release` (from the kernel's thread), or for 30 s at most; the others pass through at once."""

    def __init__(self) -> None:
        self._through = httpx.AsyncHTTPTransport()
        self.release = threading.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._through.handle_async_request(request)
        if request.url.path.startswith("/sesterce/") and not self.release.is_set():
            await asyncio.to_thread(self.release.wait, 30)
        return response

    async def aclose(self) -> None:
        await self._through.aclose()


def test_slow_read_reports_which_providers_answered(
    shell: InteractiveShell, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ipython_ext.magics

    # Sesterce answers only once the live line has said who answered and that it is awaited: no race
    # between a latency and how fast the other providers answer on a busy machine.
    held = HoldsSesterce()
    shell._gpu_magics._replace_toolkit(Toolkit(sandbox_settings(sandbox), transport=held))
    seen: list[str] = []
    real_tick = ipython_ext.magics.Progress.tick

    def tick(self, elapsed: float) -> None:
        if self.text:
            seen.append(self.text)
            if "waiting for sesterce" in self.text:
                held.release.set()
        real_tick(self, elapsed)

    monkeypatch.setattr(ipython_ext.magics.Progress, "tick", tick)
    listing = gpu(shell, "list-offers --refresh")
    assert any("waiting for sesterce" in s and "answered" in s for s in seen)
    assert {p.provider: p.status for p in listing.providers}["sesterce"] == "ok"


def test_rerunning_sandbox_keeps_it_unless_fresh(gpu_home, capsys) -> None:
    shell = new_shell()
    try:
        gpu(shell, "sandbox --ready-after 0.1")
        first = shell._gpu_magics.sandbox
        created = gpu(shell, CREATE + " --yes")
        gpu(shell, "sandbox")
        assert shell._gpu_magics.sandbox is first
        assert gpu(shell, f"get nebius {created.resource.resource_id}").name == "nb"
        gpu(shell, "sandbox --fresh")
        assert shell._gpu_magics.sandbox is not first
        assert len(gpu(shell, "ls")) == 0
    finally:
        shell.extension_manager.unload_extension("ipython_ext")


# ---- NetMind memory ------------------------------------------------------------------------------
def test_netmind_machine_memory_is_in_gb(shell: InteractiveShell, sandbox: SandboxServer) -> None:
    machines = gpu(shell, "list-offers --provider netmind --kind container")
    big = [m for m in machines if m.ram_gb is not None]
    assert big and all(m.ram_gb >= 24 for m in big)


def test_spend_shows_budgets_and_next_expiries(shell: InteractiveShell, sandbox: SandboxServer) -> None:
    from gpu_tools.toolkit import Toolkit
    from tests.conftest import sandbox_settings

    shell._gpu_magics._replace_toolkit(Toolkit(sandbox_settings(sandbox, budget_usd_per_day=100)))
    gpu(
        shell,
        "neolink-create-instance --name b --image docker.io/library/ubuntu:22.04 --gpu-sku-id 88 "
        "--expires-in 2h --yes",
    )
    text = repr(gpu(shell, "spend"))
    assert "Budgets (1)" in text and "$100.00" in text
    assert "Next expiries (1)" in text and "delete" in text


def test_tab_offers_only_gpu_words_on_a_gpu_line(shell: InteractiveShell) -> None:
    """On a %gpu line the completer answers alone (no Python keywords); elsewhere it stays out."""
    assert set(complete(shell, "%gpu get ")) == {"nebius", "sesterce", "neolink", "netmind"}
    assert "list-offers" in complete(shell, "%gpu list-o")
    assert "import" in complete(shell, "impo")
