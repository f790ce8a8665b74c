"""The Pacemaker tests run our agents as installed for production (``scripts/install-agents``
into a throwaway directory), so that Pacemaker's controller, running as hacluster, can run
them as it would on a real node."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fence_virt_testinfra.production import ProductionInstall, production_agents


@pytest.fixture(scope="session")
def installed() -> Iterator[ProductionInstall]:
    """Our fence_xvm and fence_virt installed by ``scripts/install-agents``."""
    with production_agents() as install:
        yield install
