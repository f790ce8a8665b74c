"""The ``dropin`` configuration source of fence_virtd: ``fence_virt.conf`` plus every
``*.conf`` file in ``fence_virt.conf.d/`` beside it, merged block by block
(:class:`~fence_virt_config_dropin.source.DropInSource`; rules in
:mod:`fence_virt_config_dropin.merge`)."""

from __future__ import annotations

from fence_virt_config_dropin.merge import merge_trees
from fence_virt_config_dropin.source import DropInSource, dropin_directory

__all__ = ["DropInSource", "dropin_directory", "merge_trees"]
