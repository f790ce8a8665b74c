"""fence-virt-core's pytest plugin (the ``pytest11`` entry point ``fence_virt``).

pytest loads it wherever fence-virt-core is installed, also in plugin authors' own test runs,
so it may register only fixtures that start nothing and touch nothing outside the test.
It registers none yet: the listener and backend contract suites and their fixtures will live
here.
"""

from __future__ import annotations

__all__: list[str] = []
