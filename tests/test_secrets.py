"""One way to keep provider-returned secrets out of outputs: found by name, masked in place, and
registered so the same value is removed wherever else it turns up."""

from __future__ import annotations

import pytest

from gpu_tools import errors
from gpu_tools.errors import redact
from gpu_tools.secrets import MASK, SECRET_KEYS, mask_secrets
from gpu_tools.settings import Settings
from gpu_tools.toolkit import Toolkit


@pytest.fixture(autouse=True)
def clean_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(errors, "_known_secrets", {})


def test_names_maps_and_urls_are_masked() -> None:
    masked = mask_secrets(
        {
            "sshPassword": "hunter2-long",
            "envs": {"HF_TOKEN": "hf_abcdefgh", "MODE": "fast"},
            "url": "https://x.test/lab?token=jupyter-abc123&x=1",
            "name": "kept",
        },
        keys={"sshPassword"},
        maps={"envs"},
    )
    assert masked == {
        "sshPassword": MASK,
        "envs": {"HF_TOKEN": MASK, "MODE": MASK},
        "url": "https://x.test/lab?token=***&x=1",
        "name": "kept",
    }


def test_free_text_uses_the_same_names() -> None:
    for name in SECRET_KEYS:
        assert redact(f"failed: {name}=abcd1234efgh") == f"failed: {name}=***", name
    assert "abcdef123456" not in redact("Authorization: Bearer abcdef123456")


def test_a_provider_masks_its_declared_maps_and_names() -> None:
    tk = Toolkit(Settings(sesterce_api_key="key-for-test"))
    adapter = tk.adapter("sesterce")
    assert adapter.mask(
        {"envs": {"HF_TOKEN": "hf_secret_value_1"}, "password": "p4ss-word", "name": "n"}
    ) == {
        "envs": {"HF_TOKEN": MASK},
        "password": MASK,
        "name": "n",
    }
    tk.close()
