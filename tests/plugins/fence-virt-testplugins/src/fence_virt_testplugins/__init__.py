"""Plugins for fence-virt's own tests: a listener and a backend that keep state in memory.

They are real entry-point plugins (installed in the development environment), so tests
exercise discovery, selection and the daemon exactly as third-party plugins would.
"""
