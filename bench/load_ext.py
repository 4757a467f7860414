"""`%load_ext ipython_ext` against `import IPython`: interleaved runs, each in a fresh subprocess.

Prints the median of each, their ratio (goal: at most 2x), and which heavy modules the extension
imported at load time (goal: none; the core is imported by the first %gpu call that needs it).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys

RUNS = 15
HEAVY = ("pydantic", "httpx", "gpu_tools.toolkit", "gpu_tools.providers", "starlette", "uvicorn", "mcp")

IMPORT_IPYTHON = """
import time
t = time.perf_counter()
import IPython
print(time.perf_counter() - t)
"""

LOAD_EXT = f"""
import json, sys, time
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
before = set(sys.modules)
t = time.perf_counter()
shell.run_line_magic("load_ext", "ipython_ext")
elapsed = time.perf_counter() - t
new = [m for m in set(sys.modules) - before if m.startswith({HEAVY!r})]
print(json.dumps([elapsed, sorted({{m.split('.')[0] if not m.startswith('gpu_tools') else m for m in new}})]))
"""


def run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout


def main() -> None:
    ipython, load, heavy = [], [], set()
    run(IMPORT_IPYTHON)  # warm the file cache once
    for _ in range(RUNS):  # interleaved, so drift on a noisy machine hits both alike
        ipython.append(float(run(IMPORT_IPYTHON)))
        elapsed, modules = json.loads(run(LOAD_EXT))
        load.append(elapsed)
        heavy.update(modules)
    a, b = statistics.median(ipython), statistics.median(load)
    print(f"import IPython          median {a * 1000:7.1f} ms  ({RUNS} fresh processes)")
    print(f"%load_ext ipython_ext   median {b * 1000:7.1f} ms  ({RUNS} fresh processes)")
    print(f"ratio {b / a:.2f}x (goal <= 2x)")
    print("heavy modules imported at load:", ", ".join(sorted(heavy)) or "none")


if __name__ == "__main__":
    main()
