"""Plugins that import fine but that fence_virtd must refuse, loudly."""

from __future__ import annotations

from fence_virt import hookimpl


class TypoHook:
    """An extension whose only hook is misspelt (British spelling of authorize)."""

    @hookimpl
    def fence_virt_authorise(self) -> bool:
        return True


class Misgrouped:
    """A backend registered under a misspelt entry-point group (fence_virt.backend)."""
