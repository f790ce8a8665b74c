"""fence_virtd: the host daemon that joins listener instances to one backend.

:class:`Daemon` is the application object (build it from a parsed configuration, then
``start()`` / ``stop()``, or ``async with``); :mod:`.cli` is the ``fence_virtd`` command line
around it.
"""

from fence_virt.daemon.app import Daemon, ListenerInstance

__all__ = ["Daemon", "ListenerInstance"]
