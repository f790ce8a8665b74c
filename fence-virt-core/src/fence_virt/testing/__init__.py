"""Test helpers shared by every fence-virt distribution's tests (and by plugin authors).

Importable helpers live in submodules (:mod:`.netns`, :mod:`.processes`); the pytest plugin
(:mod:`.pytest_plugin`, registered through the ``pytest11`` entry point) turns them into
fixtures. Nothing here is imported by the daemon or the agents.
"""
