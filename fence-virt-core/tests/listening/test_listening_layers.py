"""The toolkit's layer rule (architecture: ``listening`` may import errors, protocol, types
and files only), until import-linter checks it for the whole tree."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import fence_virt.listening

ALLOWED = {"fence_virt.errors", "fence_virt.protocol", "fence_virt.types", "fence_virt.files"}
PACKAGE = Path(fence_virt.listening.__file__).parent


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_every_module_imports_only_what_the_layer_allows() -> None:
    modules = sorted(PACKAGE.glob("*.py"))
    assert len(modules) > 5
    for path in modules:
        ours = {n for n in imported_modules(path) if n.split(".")[0] == "fence_virt"}
        outside = {n for n in ours if n not in ALLOWED and not n.startswith("fence_virt.listening")}
        assert not outside, f"{path.name} imports {sorted(outside)}"


def test_importing_the_toolkit_loads_no_daemon_config_or_plugin_machinery() -> None:
    code = (
        "import sys, fence_virt.listening\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('pluggy', 'stevedore', 'click')"
        " or m.startswith(('fence_virt.daemon', 'fence_virt.config', 'fence_virt.plugins',"
        " 'fence_virt.hookspecs'))]\n"
        "print(bad)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_the_public_names_resolve() -> None:
    for name in fence_virt.listening.__all__:
        assert getattr(fence_virt.listening, name) is not None, name
