"""The ``dropin`` configuration source (entry point ``fence_virt.config_sources: dropin``).

``fence_virtd --config-source dropin -f /etc/fence_virt.conf`` reads ``/etc/fence_virt.conf``
(if it exists) and then every ``*.conf`` file in ``/etc/fence_virt.conf.d/`` in name order,
and merges them (:mod:`fence_virt_config_dropin.merge`): a package or configuration
management can add a guest cluster's listener as a file of its own. Every file must be a
regular file; like the main file, each is made mode 0600 (it may name key files and hold
static maps).
"""

from __future__ import annotations

from pathlib import Path

from fence_virt.config import ConfigTree, load_file
from fence_virt.errors import UserError
from fence_virt.files import secret_file_problem, tighten_permissions
from fence_virt_config_dropin.merge import merge_trees

__all__ = ["DropInSource", "dropin_directory"]


def dropin_directory(location: str) -> Path:
    """The drop-in directory of the main file ``location``: ``LOCATION.d``."""
    return Path(f"{location}.d")


class DropInSource:
    """fence_virt.conf plus drop-in files in fence_virt.conf.d/, merged block by block."""

    def exists(self, location: str) -> bool:
        return Path(location).exists() or dropin_directory(location).is_dir()

    def files(self, location: str) -> list[Path]:
        """The files read, in order: the main file if it exists, then the drop-ins by name."""
        main = Path(location)
        found = [main] if main.exists() else []
        directory = dropin_directory(location)
        if directory.is_dir():
            found += sorted(p for p in directory.iterdir() if p.name.endswith(".conf"))
        return found

    def load(self, location: str) -> ConfigTree:
        """Read and merge every file.

        :raises UserError: a file is not a regular file, or there is none at all.
        :raises ConfigError: a syntax error, or a block two files define (file:line).
        """
        files = self.files(location)
        if not files:
            raise UserError(
                f"config file {location} does not exist, nor {dropin_directory(location)}"
            )
        for path in files:
            problem = secret_file_problem(path, what="config file")
            if problem is not None:
                raise UserError(problem)
        for path in files[1:]:
            tighten_permissions(path, what="config file")
        return merge_trees([load_file(path) for path in files], source=location)
