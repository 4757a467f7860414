"""The %gpu magics in a real IPython InteractiveShell, against the sandbox."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, get_args, get_origin

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from gpu_tools.errors import ConfirmationRefused, GpuToolsError
from gpu_tools.sandbox import SandboxServer
from gpu_tools.toolkit import Toolkit
from tests.conftest import mutating_requests, new_shell, sandbox_settings

CREATE = (
    "nebius-create-endpoint --name nb --model-name openai/gpt-oss-20b --flavor-name base "
    "--gpu-type gpu-h100-sxm --max-replicas 2"
)


def gpu(shell: InteractiveShell, line: str):
    return shell.run_line_magic("gpu", line)


def test_list_offers_renders_text_and_html(shell: InteractiveShell) -> None:
    result = gpu(shell, "list-offers --gpu H100 --min-gpu-count 2")
    assert result.items and all(o.gpu_model == "H100" and o.gpu_count >= 2 for o in result.items)
    text, page = repr(result), result._repr_html_()
    assert "[SANDBOX]" in text and "gpu-h100-sxm" in text
    assert "<table>" in page and "gpu-h100-sxm" in page


def test_display_limit_says_how_many_are_shown(shell: InteractiveShell) -> None:
    shell.run_line_magic("config", "GpuMagics.display_limit = 2")
    result = gpu(shell, "offers")
    assert result.total > 2
    assert f"2 of {result.total} shown" in repr(result)


def test_dry_run_prints_plan_and_sends_nothing(shell: InteractiveShell, sandbox: SandboxServer) -> None:
    result = gpu(shell, CREATE + " --dry-run")
    assert result.outcome == "dry_run"
    assert "POST /v0/dedicated_endpoints" in repr(result)
    assert mutating_requests(sandbox) == []


def test_without_stdin_a_mutation_is_refused(
    shell: InteractiveShell, sandbox: SandboxServer, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ConfirmationRefused, match="Nothing was sent"):
        gpu(shell, CREATE)
    out = capsys.readouterr().out
    assert "Create Nebius dedicated endpoint 'nb'" in out  # the plan was shown
    assert "no stdin" in out
    assert mutating_requests(sandbox) == []


def test_answering_no_refuses_and_yes_sends(
    shell: InteractiveShell, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = iter(["n", "y"])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(answers))
    with pytest.raises(ConfirmationRefused):
        gpu(shell, CREATE)
    assert mutating_requests(sandbox) == []
    created = gpu(shell, CREATE)
    assert created.outcome == "done" and created.resource.status in ("pending", "running")


def test_create_with_yes_wait_list_chat_scale_delete(shell: InteractiveShell, sandbox: SandboxServer) -> None:
    created = gpu(shell, CREATE + " --yes")
    rid = created.resource.resource_id
    running = gpu(shell, f"wait nebius {rid} --poll-seconds 0.1")
    assert running.status == "running"
    listed = gpu(shell, "ls")
    assert rid in repr(listed) and "running" in repr(listed)
    answer = gpu(shell, f"chat nebius {rid} --message 'hello notebook'")
    assert "hello notebook" in answer.content
    scaled = gpu(shell, f"scale nebius {rid} --max-replicas 3 --yes")
    assert scaled.resource.max_replicas == 3
    gpu(shell, f"rm nebius {rid} --yes")
    assert gpu(shell, "ls").items == []
    history = gpu(shell, "history")
    assert [e.operation for e in history.items] == [
        "delete_resource",
        "update_resource",
        "nebius_create_endpoint",
    ]


def test_bad_arguments_are_one_line_usage_errors(shell: InteractiveShell, sandbox: SandboxServer) -> None:
    with pytest.raises(UsageError, match="unrecognized arguments"):
        gpu(shell, "ls --bogus")
    with pytest.raises(UsageError, match="invalid choice"):
        gpu(shell, "get aws some-id")
    with pytest.raises(UsageError, match="unknown subcommand"):
        gpu(shell, "launch-rocket")
    with pytest.raises(UsageError, match="required"):
        gpu(shell, "nebius-create-endpoint --name x --yes")
    assert mutating_requests(sandbox) == []


def test_an_optional_annotated_argument_parses_as_its_base_type(
    shell: InteractiveShell, sandbox: SandboxServer
) -> None:
    # expires_in is `Duration | None`, Duration an Annotated str: parsed as text, not as JSON or a list
    field = shell._gpu_magics.toolkit.registry.get("nebius_create_endpoint").input.model_fields["expires_in"]
    assert any(get_origin(arg) is Annotated for arg in get_args(field.annotation))
    result = gpu(shell, CREATE + " --expires-in 2h --dry-run")
    assert result.outcome == "dry_run"
    lifetime = datetime.fromisoformat(result.plan.expires_at) - datetime.now(UTC)
    assert timedelta(hours=1, minutes=59) < lifetime <= timedelta(hours=2)
    with pytest.raises(GpuToolsError, match="expires_in"):  # its bound holds here too
        gpu(shell, CREATE + " --expires-in '" + " " * 31 + "2h' --dry-run")
    assert mutating_requests(sandbox) == []


def test_domain_errors_render_as_one_short_line(shell: InteractiveShell) -> None:
    with pytest.raises(GpuToolsError) as info:
        gpu(shell, "get nebius dep-missing")
    lines = info.value._render_traceback_()
    assert len(lines) == 1 and "dep-missing" in lines[0] and "Traceback" not in lines[0]


def test_cell_magic_takes_arguments_on_several_lines(shell: InteractiveShell) -> None:
    cell = "--name multi\n--model-name openai/gpt-oss-20b  # the template\n--flavor-name base\n--gpu-type gpu-h100-sxm"
    result = shell.run_cell_magic("gpu", "nebius-create-endpoint --dry-run", cell)
    assert result.outcome == "dry_run" and result.plan.body["name"] == "multi"


def test_help_lists_every_operation(shell: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> None:
    gpu(shell, "help")
    out = capsys.readouterr().out
    for op in shell._gpu_magics.toolkit.operations():
        assert op.name.replace("_", "-") in out


def test_read_only_session_hides_mutations(shell: InteractiveShell, sandbox: SandboxServer) -> None:
    shell._gpu_magics._replace_toolkit(Toolkit(sandbox_settings(sandbox, read_only=True)))
    with pytest.raises(UsageError, match="read-only"):
        gpu(shell, CREATE + " --yes")
    assert mutating_requests(sandbox) == []


def test_sandbox_subcommand_starts_an_emulator(gpu_home) -> None:
    shell = new_shell()
    try:
        gpu(shell, "sandbox --ready-after 0.1")
        providers = gpu(shell, "providers")
        assert providers.sandbox is True and all(p.configured for p in providers.items)
    finally:
        shell.extension_manager.unload_extension("ipython_ext")


def test_notebook_variables_in_braces_are_expanded(shell: InteractiveShell) -> None:
    created = gpu(shell, CREATE + " --yes")
    shell.user_ns["ep"] = created
    got = gpu(shell, "get nebius {ep.resource.resource_id}")
    assert got.resource_id == created.resource.resource_id
    dry = gpu(shell, "chat nebius {ep.resource.resource_id} --message '{{not_a_variable}}' --help")
    assert dry is None  # --help shows usage and returns nothing
