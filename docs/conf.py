"""Sphinx configuration of the fence-virt documentation site and man pages.

Build (what scripts/test runs, warnings are errors)::

    sphinx-build -W --keep-going -b html docs BUILD/html
    sphinx-build -W --keep-going -b man docs BUILD/man

Sphinx rather than MkDocs: autodoc reads the hook reference from the reST docstrings of
``fence_virt/hookspecs.py`` as they are, sphinx-click documents the click command, and its
``man`` builder turns the same pages into the man pages -- one source for site and man pages.
MyST lets the existing Markdown pages stay Markdown.
"""

from __future__ import annotations

import sys
from importlib.metadata import version as dist_version
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "_ext"))

project = "fence-virt"
author = "the fence-virt developers"
copyright = "the fence-virt developers, GPL-2.0-or-later"
release = version = dist_version("fence-virt-core")
# the man pages are committed and compared with a fresh build: no build date in them
today = f"fence-virt {version}"

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx_click",
    "fence_virt_docs",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "man/_*"]
myst_heading_anchors = 3
myst_enable_extensions = ["deflist"]

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_format = "short"

html_theme = "alabaster"
html_title = "fence-virt"

#: (source page, name, description, authors, section)
man_pages = [
    ("man/fence_virtd", "fence_virtd", "fence virtual machines for guest clusters", [], 8),
    ("man/fence_xvm", "fence_xvm", "fence agent for VMs, over multicast", [], 8),
    ("man/fence_virt", "fence_virt", "fence agent for VMs, over TCP, vsock or serial", [], 8),
    ("man/fence_virt.conf", "fence_virt.conf", "configuration of fence_virtd", [], 5),
]
man_show_urls = False
