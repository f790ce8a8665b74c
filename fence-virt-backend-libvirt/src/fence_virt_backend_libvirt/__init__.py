"""libvirt backend for fence_virtd: fence VMs on one or more libvirt URIs.

Registered as the ``libvirt`` entry point in ``fence_virt.backends``
(:class:`~fence_virt_backend_libvirt.plugin.LibvirtBackendPlugin`).
"""
