"""A request that was not carried out is forgotten by the duplicate filter, so the client's
retransmit (a freshly signed copy with the same seqno) is served, not dropped as a
duplicate (issue: "a request whose every connect-back failed is never released in any
test"). Here the stream side: the client hangs up during the challenge/response; the
multicast side (every connect-back refused) is in fence-virt-listener-multicast's tests.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from pathlib import Path

from fence_virt.listening import StreamPolicy, StreamServer
from fence_virt.protocol import HashType, Operation
from fence_virt.testing import RecordingDispatcher, client_session
from fence_virt.testing.factories import fence_request

KEY = b"release key\n"
PEER = ("198.51.100.7", 40000)


def test_a_request_whose_handshake_failed_is_served_when_sent_again(tmp_path: Path) -> None:
    dispatcher = RecordingDispatcher()

    async def main() -> bytes:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(tmp_path / "server.sock"))
        sock.listen(4)
        policy = StreamPolicy(
            key=KEY, hash=HashType.SHA256, auth=HashType.SHA256, request_timeout=1.0, io_timeout=5.0
        )
        server = StreamServer(
            sock, policy, requester=lambda a: a[0], log=logging.getLogger("fence_virt.rel")
        )
        await server.start(dispatcher)
        try:
            first_host, first_client = socket.socketpair()
            server.connection_made(first_host, PEER)
            request = fence_request(Operation.OFF, "vm1", key=KEY, seqno=9).encode()
            first_client.sendall(request + os.urandom(64))  # the request, the client's challenge
            reader, writer = await asyncio.open_connection(sock=first_client)
            await reader.readexactly(128)  # the host's answer and its challenge ...
            writer.close()  # ... which the client never answers: nothing is carried out
            await asyncio.sleep(0.2)
            assert dispatcher.calls == []
            again_host, again_client = socket.socketpair()
            server.connection_made(again_host, PEER)
            reader, writer = await asyncio.open_connection(sock=again_client)
            writer.write(fence_request(Operation.OFF, "vm1", key=KEY, seqno=9).encode())
            return await client_session(reader, writer, HashType.SHA256, KEY)
        finally:
            await server.stop()

    assert asyncio.run(asyncio.wait_for(main(), 30)) == b"\x00"
    assert [(op, t.domain, t.seqno) for op, t in dispatcher.calls] == [(Operation.OFF, "vm1", 9)]
