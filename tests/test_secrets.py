"""One way to keep provider-returned secrets out of outputs: found by name, masked in place, and
registered so the same value is removed wherever else it turns up."""

from __future__ import annotations

import pytest

from gpu_tools import errors
from gpu_tools.errors import redact, redact_known
from gpu_tools.secrets import MASK, SECRET_KEYS, mask_secrets
from gpu_tools.settings import Settings
from gpu_tools.toolkit import Toolkit


@pytest.fixture(autouse=True)
def clean_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(errors, "_known_secrets", {})


def test_names_maps_and_urls_are_masked_and_reported() -> None:
    found: list[str] = []
    masked = mask_secrets(
        {
            "sshPassword": "hunter2-long",
            "envs": {"HF_TOKEN": "hf_abcdefgh", "MODE": "fast"},
            "url": "https://x.test/lab?token=jupyter-abc123&x=1",
            "name": "kept",
        },
        keys={"sshPassword"},
        maps={"envs"},
        found=found,
    )
    assert masked == {
        "sshPassword": MASK,
        "envs": {"HF_TOKEN": MASK, "MODE": MASK},
        "url": "https://x.test/lab?token=***&x=1",
        "name": "kept",
    }
    assert sorted(found) == ["fast", "hf_abcdefgh", "hunter2-long", "jupyter-abc123"]


def test_free_text_uses_the_same_names() -> None:
    for name in SECRET_KEYS:
        assert redact(f"failed: {name}=abcd1234efgh") == f"failed: {name}=***", name
    assert "abcdef123456" not in redact("Authorization: Bearer abcdef123456")


def test_a_value_a_provider_returned_masked_is_removed_from_every_other_output() -> None:
    tk = Toolkit(Settings(sesterce_api_key="key-for-test"))
    adapter = tk.adapter("sesterce")
    assert adapter.mask({"envs": {"HF_TOKEN": "hf_secret_value_1"}}) == {"envs": {"HF_TOKEN": MASK}}
    # The same value echoed in a field with no secret name (a command line, an error message).
    assert redact_known("docker run -e HF_TOKEN=hf_secret_value_1") == "docker run -e HF_TOKEN=***"
    # An explicit reveal still shows it: it is a provider-returned secret, not a credential.
    assert "hf_secret_value_1" in redact_known("hf_secret_value_1", user_secrets=False)
    tk.close()
