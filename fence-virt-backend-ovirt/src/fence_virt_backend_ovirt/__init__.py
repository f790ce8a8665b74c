"""oVirt / RHV-M backend for fence_virtd: fence VMs through the engine's REST API (v4).

Registered as the ``ovirt`` entry point in ``fence_virt.backends``
(:class:`~fence_virt_backend_ovirt.plugin.OvirtBackendPlugin`). The official SDK
(``ovirtsdk4``) is used only in :mod:`fence_virt_backend_ovirt.sdk`, behind the small
:class:`~fence_virt_backend_ovirt.engine.Engine` protocol that the fencing logic
(:mod:`fence_virt_backend_ovirt.fencer`) calls.
"""
