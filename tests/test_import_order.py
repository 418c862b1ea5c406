"""No import cycles: every module of core and of every installed plugin imports on its own, first, in
an interpreter where none of our modules is loaded yet (a cycle hidden by import order breaks here)."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = r'''
import importlib, pkgutil, sys, traceback
roots = ["stowage", "stowage_raw", "stowage_pypi", "stowage_npm", "stowage_yum", "stowage_docker", "stowage_helm"]
ours = lambda name: name.split(".")[0] in roots
names = []
for root in roots:
    try:
        package = importlib.import_module(root)
    except ImportError:
        continue
    names.append(root)
    names += [m.name for m in pkgutil.walk_packages(package.__path__, root + ".")]
failures = []
for name in names:
    for loaded in [m for m in sys.modules if ours(m)]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception:
        failures.append(name + ": " + traceback.format_exc(limit=-3))
print(len(names))
print("\n".join(failures))
sys.exit(1 if failures else 0)
'''


def test_every_module_imports_first_and_alone():
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert int(result.stdout.split()[0]) > 100  # core and the plugins were walked
