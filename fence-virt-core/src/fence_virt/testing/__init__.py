"""The plugin-author kit: contract suites, in-memory plugins and codec factories.

Installed with fence-virt-core; its pytest plugin (:mod:`.pytest_plugin`, entry point
``pytest11: fence_virt``) is auto-loaded into every pytest run and registers nothing but a
side-effect-free fixture. Everything else is used explicitly:

* :class:`BackendContract` (+ :class:`StuckVmContract`) and :class:`ListenerContract`
  (+ :class:`WrongKeyContract`, :class:`RetransmitContract`): the contract suites;
* :mod:`fence_virt.testing.memory`: an in-memory backend and line-protocol listener;
* :mod:`fence_virt.testing.factories`: keys, signed requests and datagrams, serial requests;
* :class:`RecordingDispatcher`: what a listener is started with in its own tests.

**Opting in to a contract suite.** Subclass the suite in a test module of your own, under a
name pytest collects (``Test...``), and give it one fixture returning its harness. The harness
says how to reach the plugin and how to see the world without it; the suite then drives the
plugin exactly as ``fence_virtd`` does -- registered in a plugin manager, called through
core's typed facade, the backend through core's ``BackendRunner`` (so ``def`` and
``async def`` backends both work). Optional capabilities are separate classes you list next
to the suite; a harness that lacks what one needs fails it rather than skipping::

    import pytest

    from fence_virt.testing import BackendContract, BackendHarness, BadConfig, Observed
    from my_backend.plugin import MyBackendPlugin

    CONFIG = 'backends {\\n    mine {\\n        url = "https://lab.example";\\n    }\\n}\\n'


    class TestMyBackendContract(BackendContract):
        @pytest.fixture
        def backend_harness(self, lab) -> BackendHarness:  # a fresh lab per test
            return BackendHarness(
                plugin=MyBackendPlugin,
                name="mine",  # its entry-point name: the block is backends { mine { } }
                config=CONFIG,
                running=("vm1", "vm2", "vm3"),
                observe=lambda vm: Observed(running=lab.is_on(vm), boot=lab.boot_id(vm)),
                bad_config=BadConfig(CONFIG.replace("https://", "gopher://"), line=3),
            )

The memory plugins run every suite in fence-virt-core/tests/testing; the libvirt backend and
the multicast listener (in a network namespace) in their own distributions' tests.

fence-virt's own heavy test infrastructure (network namespaces, libvirtd, QEMU guests, the C
suite, Pacemaker) is the unpublished ``fence-virt-testinfra`` distribution, never part of
this kit. Names below load on first use, so a daemon that runs the memory plugins does not
need pytest.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fence_virt.testing.backend_contract import (
        Answer,
        BackendContract,
        BackendHarness,
        BadConfig,
        DrivenBackend,
        Observed,
        StuckVmContract,
    )
    from fence_virt.testing.clients import client_session
    from fence_virt.testing.dispatcher import RECORDED_VMS, RecordingDispatcher
    from fence_virt.testing.drive import ContractWarning, CoroutineRunner
    from fence_virt.testing.listener_contract import (
        ClientRequest,
        ListenerContract,
        ListenerHarness,
        RetransmitContract,
        ServedListener,
        WrongKeyContract,
    )

__all__ = [
    "RECORDED_VMS",
    "Answer",
    "BackendContract",
    "BackendHarness",
    "BadConfig",
    "ClientRequest",
    "ContractWarning",
    "CoroutineRunner",
    "DrivenBackend",
    "ListenerContract",
    "ListenerHarness",
    "Observed",
    "RecordingDispatcher",
    "RetransmitContract",
    "ServedListener",
    "StuckVmContract",
    "WrongKeyContract",
    "client_session",
]

_BACKEND = "fence_virt.testing.backend_contract"
_LISTENER = "fence_virt.testing.listener_contract"
_LAZY = {
    "Answer": _BACKEND,
    "BackendContract": _BACKEND,
    "BackendHarness": _BACKEND,
    "BadConfig": _BACKEND,
    "DrivenBackend": _BACKEND,
    "Observed": _BACKEND,
    "StuckVmContract": _BACKEND,
    "ClientRequest": _LISTENER,
    "ListenerContract": _LISTENER,
    "ListenerHarness": _LISTENER,
    "RetransmitContract": _LISTENER,
    "ServedListener": _LISTENER,
    "WrongKeyContract": _LISTENER,
    "client_session": "fence_virt.testing.clients",
    "RECORDED_VMS": "fence_virt.testing.dispatcher",
    "RecordingDispatcher": "fence_virt.testing.dispatcher",
    "ContractWarning": "fence_virt.testing.drive",
    "CoroutineRunner": "fence_virt.testing.drive",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'fence_virt.testing' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
