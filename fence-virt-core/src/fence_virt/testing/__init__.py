"""The kit for plugin authors' tests (the ``pytest11`` entry point ``fence_virt``).

Everything here is installed with fence-virt-core and auto-loaded into every pytest run that
has it, so it holds only what is generic and safe there: no network namespaces, daemons,
libvirtd, QEMU or C tools. It is meant to grow a contract suite for listeners and backends,
in-memory plugins and codec factories (:mod:`.pytest_plugin`).

fence-virt's own test infrastructure (network namespaces, libvirtd, QEMU guests, the C suite,
Pacemaker) lives in the unpublished ``fence-virt-testinfra`` distribution of the repository
(``tests/infra/fence-virt-testinfra``), never here.
"""
