"""The README's Prometheus set-up as a person pastes it: `promtool` (Debian's `prometheus`, installed by
.ci/run) checks the scrape config and the alert rules, and unit-tests each alert against series that
should and should not fire it; every metric the rules name is one gpu-tools exports."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from gpu_tools.journal import Journal
from gpu_tools.metrics import Metrics
from gpu_tools.settings import Settings

README = Path(__file__).resolve().parents[1] / "README.md"


def promtool() -> str:
    found = shutil.which("promtool")
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("promtool is missing: .ci/run installs Debian's prometheus package for it")
    pytest.skip("promtool is missing: apt-get install prometheus")


def readme_yaml(first_line: str) -> str:
    """The README's ```yaml block that starts with `first_line`."""
    for block in re.findall(r"```yaml\n(.*?)```", README.read_text(), flags=re.S):
        if block.startswith(first_line):
            return block
    raise AssertionError(f"README has no yaml block starting with {first_line!r}")


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, timeout=60)


def test_the_readme_scrape_config_and_alert_rules_pass_promtool(tmp_path: Path) -> None:
    tool = promtool()
    (tmp_path / "gpu-tools-alerts.yml").write_text(readme_yaml("# gpu-tools-alerts.yml"))
    config = readme_yaml("# prometheus.yml").replace("/etc/prometheus/gpu-tools-metrics-token", "token")
    (tmp_path / "token").write_text("metrics-token-0123456789\n")
    (tmp_path / "prometheus.yml").write_text(config)
    rules = run(tool, "check", "rules", "gpu-tools-alerts.yml", cwd=tmp_path)
    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert "4 rules found" in rules.stdout
    checked = run(tool, "check", "config", "prometheus.yml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr


# Each alert, fed series that fire it and series that must not: promtool's rule unit tests.
RULE_TESTS = """
rule_files: [gpu-tools-alerts.yml]
evaluation_interval: 1m
tests:
  # no guard has ever reported: GpuGuardNotRunning after its 5 minutes
  - interval: 1m
    input_series: []
    alert_rule_test:
      - {eval_time: 6m, alertname: GpuGuardNotRunning, exp_alerts: [{exp_labels: {}}]}
  # a guard that passes every minute: no alert; one that stopped at minute 2: alert by minute 13
  - interval: 1m
    input_series:
      - series: 'gpu_tools_guard_last_pass_timestamp_seconds{job="gpu-guard"}'
        values: '0+60x20'
    alert_rule_test:
      - {eval_time: 15m, alertname: GpuGuardNotRunning, exp_alerts: []}
  - interval: 1m
    input_series:
      - series: 'gpu_tools_guard_last_pass_timestamp_seconds{job="gpu-guard"}'
        values: '0 60 120 120 120 120 120 120 120 120 120 120 120 120 120 120 120 120'
    alert_rule_test:
      - {eval_time: 4m, alertname: GpuGuardNotRunning, exp_alerts: []}
      - {eval_time: 14m, alertname: GpuGuardNotRunning, exp_alerts: [{exp_labels: {}}]}
  # Sesterce answers 5xx to most requests, Nebius to none
  - interval: 1m
    input_series:
      - series: 'gpu_tools_provider_requests_total{provider="sesterce",operation="GET",status="5xx"}'
        values: '0+10x30'
      - series: 'gpu_tools_provider_requests_total{provider="sesterce",operation="GET",status="2xx"}'
        values: '0+2x30'
      - series: 'gpu_tools_provider_requests_total{provider="nebius",operation="GET",status="2xx"}'
        values: '0+10x30'
    alert_rule_test:
      - alertname: GpuProviderFailing
        eval_time: 25m
        exp_alerts: [{exp_labels: {provider: sesterce}}]
  # $10 left today and $6/h live: under two hours of spending left; $50 left is not
  - interval: 1m
    input_series:
      - series: 'gpu_tools_budget_left_usd{job="gpu-guard",budget="budget_usd_per_day"}'
        values: '10x10'
      - series: 'gpu_tools_budget_left_usd{job="gpu-guard",budget="budget_usd_total"}'
        values: '50x10'
      - series: 'gpu_tools_live_usd_per_hour{job="gpu-guard",provider="nebius"}'
        values: '6x10'
    alert_rule_test:
      - alertname: GpuBudgetNearlySpent
        eval_time: 8m
        exp_alerts: [{exp_labels: {budget: budget_usd_per_day}}]
  # a running Nebius endpoint of unknown cost for 20 minutes; NeoLink's are all priced
  - interval: 1m
    input_series:
      - series: 'gpu_tools_live_unpriced_resources{job="gpu-guard",provider="nebius"}'
        values: '1x30'
      - series: 'gpu_tools_live_unpriced_resources{job="gpu-guard",provider="neolink"}'
        values: '0x30'
    alert_rule_test:
      - alertname: GpuCostUnknown
        eval_time: 10m
        exp_alerts: []
      - alertname: GpuCostUnknown
        eval_time: 20m
        exp_alerts: [{exp_labels: {provider: nebius}}]
"""


def test_each_alert_fires_on_the_series_it_is_for_and_not_otherwise(tmp_path: Path) -> None:
    tool = promtool()
    (tmp_path / "gpu-tools-alerts.yml").write_text(readme_yaml("# gpu-tools-alerts.yml"))
    (tmp_path / "tests.yml").write_text(RULE_TESTS)
    tested = run(tool, "test", "rules", "tests.yml", cwd=tmp_path)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_every_metric_the_rules_name_is_exported(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, budget_usd_per_day=10, budget_usd_total=50)  # type: ignore[call-arg]
    journal = Journal.open(tmp_path / "journal.sqlite3")
    journal.set_meta("guard_last_pass", "2026-12-04T12:00:00+00:00")
    text, _ = Metrics(lambda: journal, settings, ["nebius", "sesterce"]).render()
    exported = {line.split()[2] for line in text.decode().splitlines() if line.startswith("# TYPE ")}
    exported |= {f"{name}_total" for name in exported}
    named = set(re.findall(r"gpu_tools_[a-z_]+", readme_yaml("# gpu-tools-alerts.yml")))
    assert named == {
        "gpu_tools_guard_last_pass_timestamp_seconds",
        "gpu_tools_provider_requests_total",
        "gpu_tools_budget_left_usd",
        "gpu_tools_live_usd_per_hour",
        "gpu_tools_live_unpriced_resources",
    }
    assert named <= exported, named - exported
