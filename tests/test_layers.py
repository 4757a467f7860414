"""Imports flow one way: fronts -> toolkit -> gate/catalog -> providers -> models/http/errors.

Every import in gpu_tools counts, module-level or inside a function (a lazy import hides a cycle,
it does not remove it); only `if TYPE_CHECKING:` blocks are left out.
"""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "gpu_tools"


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for n in ast.walk(node))
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module(p): p for p in CORE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps = set()
        for imported in _imports(path):
            # `from gpu_tools.providers.base import X` depends on that module (and its package).
            while imported and imported not in modules:
                imported = imported.rpartition(".")[0]
            if imported and imported != name and not name.startswith(imported + "."):
                deps.add(imported)
        graph[name] = deps
    return graph


def test_the_core_has_no_import_cycle() -> None:
    try:
        list(TopologicalSorter(_graph()).static_order())
    except CycleError as exc:
        raise AssertionError(f"import cycle in gpu_tools: {' -> '.join(exc.args[1])}") from None


def test_lower_layers_never_import_higher_ones() -> None:
    graph = _graph()
    higher = {
        "gpu_tools.models": {
            "gpu_tools.operations",
            "gpu_tools.providers",
            "gpu_tools.gate",
            "gpu_tools.toolkit",
        },
        "gpu_tools.operations": {
            "gpu_tools.providers",
            "gpu_tools.gate",
            "gpu_tools.catalog",
            "gpu_tools.toolkit",
        },
        "gpu_tools.providers.base": {
            "gpu_tools.gate",
            "gpu_tools.catalog",
            "gpu_tools.unified",
            "gpu_tools.toolkit",
        },
        "gpu_tools.gate": {"gpu_tools.unified", "gpu_tools.toolkit"},
        "gpu_tools.catalog": {"gpu_tools.unified", "gpu_tools.toolkit", "gpu_tools.providers"},
    }
    for module, forbidden in higher.items():
        assert not graph[module] & forbidden, f"{module} imports {graph[module] & forbidden}"


def test_the_core_imports_no_front() -> None:
    for path in CORE.rglob("*.py"):
        for imported in _imports(path):
            top = imported.split(".")[0]
            assert top not in {"mcp_server", "ipython_ext", "mcp", "IPython"}, f"{path} imports {imported}"


def test_providers_stand_apart_and_settings_below_them() -> None:
    """A provider package imports no other provider's; settings knows no provider (each one's
    declaration adds its settings); the declarations' machinery sits below the packages."""
    graph = _graph()
    packages = {"nebius", "netmind", "neolink", "sesterce"}
    for module, deps in graph.items():
        parts = module.split(".")
        if parts[:2] == ["gpu_tools", "providers"] and len(parts) > 2 and parts[2] in packages:
            others = {d for d in deps if d.split(".")[2:3] and d.split(".")[2] in packages - {parts[2]}}
            assert not others, f"{module} imports another provider: {others}"
    assert not {d for d in graph["gpu_tools.settings"] if d.startswith("gpu_tools.providers")}
    assert not {
        d for d in graph["gpu_tools.providers.declare"] if d.split(".")[2:3] and d.split(".")[2] in packages
    }


def test_sandbox_routes_import_the_shared_state_never_the_app() -> None:
    graph = _graph()
    # The state imports nothing of the sandbox, and of the core only the GPU-name leaf (price switches).
    assert {d for d in graph["gpu_tools.sandbox.state"] if d.startswith("gpu_tools")} <= {"gpu_tools.gpus"}
    for provider in ("nebius", "netmind", "neolink", "sesterce"):
        deps = graph[f"gpu_tools.sandbox.{provider}"]
        assert "gpu_tools.sandbox.app" not in deps and "gpu_tools.sandbox" not in deps, provider
