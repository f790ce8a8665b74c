"""The ``cpg`` backend plugin: builds a :class:`CpgBackend` from ``backends { cpg { ... } }``."""

from __future__ import annotations

from fence_virt import Availability, ConfigSection, WizardQuestion, hookimpl
from fence_virt.config import ConfigTree
from fence_virt_backend_cpg.backend import CpgBackend
from fence_virt_backend_cpg.config import load_settings
from fence_virt_backend_cpg.libcpg import library_problem

__all__ = ["CpgBackendPlugin"]


class CpgBackendPlugin:
    """Fence VMs wherever they run in a corosync cluster of hosts (CPG group, as C's cpg)."""

    #: ``fence_virtd -c``: C's cpg page (c-suite-spec §5.5; C's wizard offers ``uuid``)
    wizard_questions = (
        # repeatable: every uri of the block is kept, the first is asked (one: as C's page)
        WizardQuestion("uri", "Libvirt URI", "qemu:///system", repeatable=True),
        WizardQuestion(
            "name_mode",
            "VM naming/tracking mode (name or uuid)",
            "uuid",
            choices=("name", "uuid"),
            intro="'uuid' avoids name collisions between VMs of different hosts; 'name'\n"
            "is what fence_xvm-era setups used.",
        ),
    )

    @hookimpl
    def fence_virt_backend_check(self, section: ConfigSection, config: ConfigTree) -> Availability:
        if not section.present:
            return Availability.no(f'no {section.path} block (it needs uri = "...";)')
        settings = load_settings(section, config)
        problem = library_problem()
        if problem is not None:
            return Availability.no(problem)
        return Availability.yes(
            f"CPG group {settings.group}; local VMs from {', '.join(settings.uri)}"
        )

    @hookimpl
    def fence_virt_backend_create(self, section: ConfigSection, config: ConfigTree) -> CpgBackend:
        settings = load_settings(section, config)
        if not settings.uri:
            raise section.error(None, 'needs at least one uri = "...";')
        if not settings.group or len(settings.group.encode()) > 128:
            raise section.error("group", "must be 1 to 128 bytes")
        return CpgBackend(settings)
