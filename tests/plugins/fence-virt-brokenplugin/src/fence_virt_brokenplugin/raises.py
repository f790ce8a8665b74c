"""Importing this module fails, as a plugin with a missing dependency would."""

raise ImportError("fence-virt-brokenplugin: this module fails to import on purpose")
