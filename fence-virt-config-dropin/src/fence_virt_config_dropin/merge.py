"""Merge several parsed ``fence_virt.conf`` files into one tree, block by block.

Rules (what lets each file own its blocks, and every error keep naming its file and line):

* the container blocks ``listeners``, ``backends`` and ``extensions`` may appear in every file;
  their named blocks are gathered in file order into one container. A named block that two
  files define (``listeners { cluster-b { } }`` twice) is an error naming both places: one
  file never silently overrides another's block;
* ``groups`` may appear in every file too; its ``group`` blocks add up;
* every other top-level block (``fence_virtd``, ...) and every top-level entry belongs to one
  file: a second file that has it is an error naming both places;
* blocks are taken over whole, with the ``source`` and ``line`` they had in their own file, so
  an error about a value in a plugin's block names the drop-in file it is written in
  (:mod:`fence_virt.config.sources`). Entries directly inside a container would lose their
  file in the merged container, so they are an error.

Within one file nothing is merged or checked here: the daemon's own checks (repeated
top-level blocks, unknown blocks) see each file's blocks as written.
"""

from __future__ import annotations

from collections.abc import Sequence

from fence_virt.config import ConfigNode, ConfigTree
from fence_virt.errors import ConfigError

__all__ = ["CONTAINERS", "merge_trees"]

#: top-level blocks every file may add to: name -> whether their blocks are named (unique)
CONTAINERS = {"listeners": True, "backends": True, "extensions": True, "groups": False}


def merge_trees(trees: Sequence[ConfigTree], *, source: str) -> ConfigTree:
    """One tree from ``trees`` (in precedence-free file order) under the rules above.

    :param source: what the merged tree is named by (the main file's path).
    :raises ConfigError: a block or entry defined in two files, or an entry directly inside a
        container; the message names both files and lines.
    """
    owners: dict[str, ConfigTree] = {}
    values = []
    for tree in trees:
        for entry in tree.values:
            _claim(owners, f"@{entry.key}", tree, entry.line, f"entry {entry.key}")
            values.append(entry)
    children: list[ConfigNode] = []
    containers: dict[str, list[ConfigNode]] = {}
    for tree in trees:
        for node in tree.children:
            key = node.name.casefold()
            if key in CONTAINERS:
                if key not in containers:
                    containers[key] = []
                    children.append(node)  # placeholder, replaced below, keeps file order
                containers[key].append(node)
            else:
                _claim(owners, key, tree, node.line, f"block {node.name}")
                children.append(node)
    merged = [
        _merge_container(containers[c.name.casefold()]) if c.name.casefold() in containers else c
        for c in children
    ]
    return ConfigTree(children=tuple(merged), values=tuple(values), source=source)


def _claim(owners: dict[str, ConfigTree], key: str, tree: ConfigTree, line: int, what: str) -> None:
    """Record that ``tree`` has ``key``; :raises ConfigError: another file has it too."""
    first = owners.setdefault(key, tree)
    if first is not tree:
        raise ConfigError(
            f"{what} is also in {first.source}: keep it in one file",
            path=tree.source,
            line=line or None,
        )


def _merge_container(nodes: list[ConfigNode]) -> ConfigNode:
    """One container block from the blocks of that name in every file."""
    named = CONTAINERS[nodes[0].name.casefold()]
    seen: dict[str, ConfigNode] = {}
    children: list[ConfigNode] = []
    for node in nodes:
        if node.values:
            entry = node.values[0]
            raise ConfigError(
                f"{node.name}: entry {entry.key} directly inside the block (only blocks go here)",
                path=node.source,
                line=entry.line or None,
            )
        for child in node.children:
            first = seen.setdefault(child.name.casefold(), child) if named else child
            if first is not child and first.source != child.source:
                raise ConfigError(
                    f"{node.name}/{child.name} is also defined at {first.source}:{first.line}",
                    path=child.source,
                    line=child.line or None,
                )
            children.append(child)
    head = nodes[0]
    return ConfigNode(
        head.name, head.value, tuple(children), (), line=head.line, source=head.source
    )
