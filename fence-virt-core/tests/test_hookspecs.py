"""The hook specification is the plugin-author reference: every hook documents each argument
and its return value, and the author guide mentions every hook."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from fence_virt import hookspecs
from fence_virt_testinfra.plugins import repo_root

HOOKS = [name for name in dir(hookspecs) if name.startswith("fence_virt_")]


def test_hooks_exist() -> None:
    assert len(HOOKS) == 11


@pytest.mark.parametrize("name", HOOKS)
def test_hook_docstring_documents_arguments_and_return(name: str) -> None:
    func = getattr(hookspecs, name)
    doc = inspect.getdoc(func) or ""
    assert doc.splitlines()[0].endswith("."), "one-line summary first"
    for param in inspect.signature(func).parameters:
        assert f":param {param}:" in doc
    assert ":returns:" in doc


@pytest.mark.parametrize("name", HOOKS)
def test_author_guide_mentions_hook(name: str) -> None:
    guide = Path(repo_root() / "docs" / "plugin-authors.md").read_text()
    assert f"`{name}`" in guide
