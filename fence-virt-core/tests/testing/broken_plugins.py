"""Plugins broken on purpose, and harnesses for them, for the kit's own tests.

``test_kit_catches_broken_plugins.py`` copies this module into a pytester directory and runs
the contract suites against each plugin here: every broken one must fail exactly the checks
its defect breaks. The honest ones (:class:`KeyedListenerPlugin` and the memory plugins)
show the same harness passes when nothing is broken.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Sequence
from pathlib import Path

from fence_virt import DropKind, Target, hookimpl
from fence_virt.config import ConfigSection
from fence_virt.errors import ConfigError
from fence_virt.protocol import HostState, Operation, Response
from fence_virt.testing import BackendHarness, BadConfig, ClientRequest, ListenerHarness, Observed
from fence_virt.testing.memory import (
    OPERATION_WORDS,
    RUNNING,
    MemoryBackend,
    MemoryBackendPlugin,
    MemoryListener,
    MemoryListenerPlugin,
    MemoryMachines,
    fence,
    load_memory_config,
    send_line,
)

# ---------------------------------------------------------------------------------------------
# backends

RUNNING_VMS = ("vm1", "vm2", "vm3", "vm4")
CONFIG = (
    "backends {\n"
    "    memory {\n"
    + "".join(f'        vm = "{vm}";\n' for vm in RUNNING_VMS)
    + '        vm = "stuck-on";\n'
    '        shutoff = "stuck-off";\n'
    '        stuck = "stuck-on";\n'
    '        stuck = "stuck-off";\n'
    "    }\n"
    "}\n"
)
BAD_CONFIG = CONFIG.replace("    memory {\n", '    memory {\n        stuck = "nosuch";\n')


def harness(plugin_class: type[MemoryBackendPlugin], *, stuck: bool = True) -> BackendHarness:
    """A memory-backend harness for ``plugin_class`` (a MemoryBackendPlugin subclass)."""
    machines = MemoryMachines()
    return BackendHarness(
        plugin=plugin_class(machines),
        name="memory",
        config=CONFIG,
        running=RUNNING_VMS,
        observe=lambda vm: Observed(running=machines.is_running(vm), boot=machines.boots(vm)),
        bad_config=BadConfig(BAD_CONFIG, line=3),
        stuck=("stuck-on", "stuck-off") if stuck else (),
    )


def plugin_for(backend_class: type[MemoryBackend]) -> type[MemoryBackendPlugin]:
    """A memory plugin whose create hook builds ``backend_class``."""

    class Plugin(MemoryBackendPlugin):
        @hookimpl
        def fence_virt_backend_create(self, section: ConfigSection) -> MemoryBackend:
            return backend_class(load_memory_config(section), self.machines)

    return Plugin


class OffDoesNothing(MemoryBackend):
    """off answers SUCCESS without powering anything off."""

    def off(self, target: Target) -> Response:
        return Response.SUCCESS if self.machines.find(target.domain) else Response.FAIL


class RebootDoesNothing(MemoryBackend):
    """reboot answers SUCCESS for a running VM without restarting it."""

    def reboot(self, target: Target) -> Response:
        return Response.SUCCESS if self.machines.find(target.domain) else Response.FAIL


class UnknownIsOff(MemoryBackend):
    """status of a VM it does not know is OFF (the C libvirt backend's old mistake)."""

    def status(self, target: Target) -> Response:
        if self.machines.find(target.domain) is None:
            return Response.OFF
        return super().status(target)


class UnknownIsTheFirstVm(MemoryBackend):
    """an unknown domain falls back to the first VM configured."""

    def _find(self, target: Target, operation: str) -> str | None:
        return self.machines.find(target.domain) or self._settings.vm[0]


class NoReadBack(MemoryBackend):
    """presses the button and answers SUCCESS without looking whether the VM obeyed."""

    def _power(self, name: str, *, on: bool) -> bool:
        self.machines.press(name, on=on)
        return True


class Racy(MemoryBackend):
    """keeps the VM being worked on in one attribute: concurrent calls act on the wrong VM."""

    _current: str | None = None

    def _power(self, name: str, *, on: bool) -> bool:
        self._current = name
        time.sleep(0.05)  # a slow hypervisor call; meanwhile another thread sets _current
        assert self._current is not None
        return super()._power(self._current, on=on)


class StatusAlwaysOn(MemoryBackend):
    """status answers SUCCESS for every VM it knows, off or not."""

    def status(self, target: Target) -> Response:
        return Response.SUCCESS if self.machines.find(target.domain) else Response.FAIL


class HostListAllOn(MemoryBackend):
    """lists every VM as running."""

    def hostlist(self, requester: str) -> Sequence[HostState]:
        return [HostState(row.domain, row.uuid, RUNNING) for row in super().hostlist(requester)]


OffDoesNothingPlugin = plugin_for(OffDoesNothing)
StatusAlwaysOnPlugin = plugin_for(StatusAlwaysOn)
HostListAllOnPlugin = plugin_for(HostListAllOn)
RebootDoesNothingPlugin = plugin_for(RebootDoesNothing)
UnknownIsOffPlugin = plugin_for(UnknownIsOff)
UnknownIsTheFirstVmPlugin = plugin_for(UnknownIsTheFirstVm)
NoReadBackPlugin = plugin_for(NoReadBack)
RacyPlugin = plugin_for(Racy)


class CheckAnswersTruePlugin(MemoryBackendPlugin):
    """answers the availability check with a bare True."""

    @hookimpl
    def fence_virt_backend_check(self, section: ConfigSection) -> object:
        return True


class ConfigErrorWithoutLinePlugin(MemoryBackendPlugin):
    """reports a bad value without saying where it is."""

    @hookimpl
    def fence_virt_backend_create(self, section: ConfigSection) -> MemoryBackend:
        try:
            settings = load_memory_config(section)
        except ConfigError as exc:
            raise ConfigError(str(exc).rpartition(": ")[2]) from None
        return MemoryBackend(settings, self.machines)


# ---------------------------------------------------------------------------------------------
# listeners: the memory line protocol, and a keyed variant with sequence numbers

REQUESTER = "198.51.100.9"
MALFORMED = (b"explode vm1", b"\xff\xfe vm1", b"", b"off vm1 vm2")


def _socket(tmp: Path) -> Path:
    return tmp / "s"


def memory_listener_harness(plugin_class: type, tmp: Path) -> ListenerHarness:
    """A harness for a MemoryListenerPlugin subclass; ``tmp`` must be a short directory."""
    sock = _socket(tmp)

    async def send(request: ClientRequest) -> Response | None:
        return await asyncio.to_thread(fence, sock, request.operation, request.domain)

    async def send_bytes(data: bytes) -> None:
        await asyncio.to_thread(send_line, sock, data)

    return ListenerHarness(
        plugin=plugin_class,
        name="memory",
        config=f'listeners {{ memory {{ socket = "{sock}"; requester = "{REQUESTER}"; }} }}',
        requester=REQUESTER,
        send=send,
        send_bytes=send_bytes,
        malformed=MALFORMED,
    )


def listener_plugin_for(listener_class: type[MemoryListener]) -> type[MemoryListenerPlugin]:
    class Plugin(MemoryListenerPlugin):
        @hookimpl
        def fence_virt_listener_create(self, section: ConfigSection) -> MemoryListener:
            created = super().fence_virt_listener_create(section)
            return listener_class(created._path, created._requester)

    return Plugin


class Eager(MemoryListener):
    """takes any line it cannot read as a status request."""

    async def _answer(self, line: bytes) -> str:
        answer = await super()._answer(line)
        words = line.decode(errors="replace").split()
        if words and words[0] not in OPERATION_WORDS and self._dispatcher is not None:
            target = Target(domain=words[-1], by_uuid=False, requester=self._requester, seqno=0)
            return str(int(await self._dispatcher.fence(Operation.STATUS, target)))
        return answer


class AlwaysSuccess(MemoryListener):
    """passes requests on but tells the client SUCCESS whatever the dispatcher said."""

    async def _answer(self, line: bytes) -> str:
        await super()._answer(line)
        return str(int(Response.SUCCESS))


class Twice(MemoryListener):
    """passes every request on twice."""

    async def _answer(self, line: bytes) -> str:
        await super()._answer(line)
        return await super()._answer(line)


EagerPlugin = listener_plugin_for(Eager)
AlwaysSuccessPlugin = listener_plugin_for(AlwaysSuccess)
TwicePlugin = listener_plugin_for(Twice)


class KeyedListener(MemoryListener):
    """``KEY OPERATION DOMAIN SEQNO`` lines: a wrong key is refused, a sequence number seen
    before is answered from memory without dispatching again."""

    check_key = True
    filter_copies = True

    def __init__(self, path: Path, key: str) -> None:
        super().__init__(path, REQUESTER)
        self._key = key
        self._answered: dict[tuple[str, str, str], str] = {}

    async def _answer(self, line: bytes) -> str:
        words = line.decode(errors="replace").split()
        if len(words) != 4 or words[1] not in OPERATION_WORDS or not words[3].isdigit():
            return "1"
        key, operation, domain, seqno = words
        if self.check_key and key != self._key:
            assert self._dispatcher is not None
            self._dispatcher.dropped(REQUESTER, DropKind.AUTHENTICATION, "wrong key")
            return "1"
        seen = (operation, domain, seqno)
        if self.filter_copies and seen in self._answered:
            return self._answered[seen]
        answer = await super()._answer(f"{operation} {domain}".encode())
        self._answered[seen] = answer
        return answer


class KeylessListener(KeyedListener):
    """checks no key."""

    check_key = False


class ForgetfulListener(KeyedListener):
    """claims to filter copies but runs every one."""

    filter_copies = False


def keyed_plugin_for(listener_class: type[KeyedListener]) -> type:
    class Plugin:
        """Keyed line listener (a test of the kit)."""

        @hookimpl
        def fence_virt_listener_check(self, section: ConfigSection) -> object:
            return MemoryListenerPlugin().fence_virt_listener_check(section)

        @hookimpl
        def fence_virt_listener_create(self, section: ConfigSection) -> KeyedListener:
            created = MemoryListenerPlugin().fence_virt_listener_create(section)
            return listener_class(created._path, "sesame")

    return Plugin


KeyedListenerPlugin = keyed_plugin_for(KeyedListener)
KeylessListenerPlugin = keyed_plugin_for(KeylessListener)
ForgetfulListenerPlugin = keyed_plugin_for(ForgetfulListener)


def _ask_keyed(sock: Path, key: str, request: ClientRequest, copies: int) -> Response:
    word = next(w for w, op in OPERATION_WORDS.items() if op is request.operation)
    line = f"{key} {word} {request.domain} {request.seqno}\n".encode()
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(str(sock))
        s.sendall(line * copies)
        with s.makefile("rb") as stream:
            answers = [stream.readline() for _ in range(copies)]
    return Response(int(answers[0]))


def keyed_listener_harness(plugin_class: type, tmp: Path) -> ListenerHarness:
    sock = _socket(tmp)

    def sender(key: str):
        async def send(request: ClientRequest) -> Response | None:
            return await asyncio.to_thread(_ask_keyed, sock, key, request, 1)

        return send

    async def send_copies(request: ClientRequest, copies: int) -> Response | None:
        return await asyncio.to_thread(_ask_keyed, sock, "sesame", request, copies)

    base = memory_listener_harness(plugin_class, tmp)
    return ListenerHarness(
        plugin=plugin_class,
        name="memory",
        config=base.config,
        requester=REQUESTER,
        send=sender("sesame"),
        send_bytes=base.send_bytes,
        malformed=(*MALFORMED, b"sesame off vm1", b"sesame explode vm1 7"),
        send_wrong_key=sender("guess"),
        send_copies=send_copies,
    )
