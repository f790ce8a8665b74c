"""Test infrastructure shared by every fence-virt distribution's tests (not published).

Helpers that start real things and always clean them up: network namespaces (:mod:`.netns`,
:mod:`.topology`, :mod:`.setns`), processes stopped by PID (:mod:`.processes`), a private
libvirtd (:mod:`.libvirtd`) and QEMU guests (:mod:`.qemu`), the C suite (:mod:`.c_suite`) and
our own programs (:mod:`.ours`) as test peers, a sandboxed Pacemaker cluster
(:mod:`.sandbox`, :mod:`.pacemaker`), throw-away plugin installs (:mod:`.plugins`). The pytest
plugin (:mod:`.pytest_plugin`, ``pytest11`` entry point) turns them into fixtures.

The C suite's TCP transport (its daemon's ``tcp`` listener, ``fence_virt -T``): :mod:`.c_tcp`.
Datagrams captured to be replayed: :mod:`.capture`; a daemon's clocks moved while it runs:
:mod:`.faketime`.

A fake oVirt engine (HTTPS, SSO, the REST resources the ovirt backend calls; a test double, as
no engine can run here): :mod:`.ovirt_engine`, on a throwaway CA from :mod:`.tls`.

Nothing in fence-virt's distributions imports this package; it is installed in the
development workspace only.
"""
