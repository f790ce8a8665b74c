"""Entry points for fence-virt's own tests: the kit's in-memory plugins, and two extensions.

The ``memory`` listener and backend are :mod:`fence_virt.testing.memory`'s (shipped with core
for plugin authors); this distribution only registers them under ``fence_virt.listeners`` and
``fence_virt.backends``, so tests exercise discovery, selection and the daemon exactly as
with third-party plugins. The ``recorder`` and ``deny`` extensions (:mod:`.extensions`) are
its own.
"""
