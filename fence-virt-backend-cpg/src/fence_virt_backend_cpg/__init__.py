"""corosync CPG backend for fence_virtd: hosts of one corosync cluster share where each VM
runs, so a request reaching any host fences the VM on the host that runs it.

Registered as the ``cpg`` entry point in ``fence_virt.backends``
(:class:`~fence_virt_backend_cpg.plugin.CpgBackendPlugin`). Parts: :mod:`.libcpg` (ctypes
over ``libcpg.so.4``), :mod:`.group` (the group on the asyncio loop), :mod:`.wire` (C's
messages), :mod:`.fencing` (the dead-host rule), :mod:`.backend` (the backend object); the
location model itself is core's :mod:`fence_virt.locations`.
"""
