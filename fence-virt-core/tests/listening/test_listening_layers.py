"""The toolkit's layer rule at run time: importing it loads no daemon, config or plugin
machinery, not even lazily. (The static rule for every part is import-linter's, in
scripts/test: see ``[tool.importlinter]`` in the root pyproject.toml.)"""

from __future__ import annotations

import subprocess
import sys

import fence_virt.listening


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
