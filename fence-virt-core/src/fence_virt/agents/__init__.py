"""Guest-side fence agents: ``fence_xvm`` (multicast, :mod:`.xvm`) and ``fence_virt`` (TCP,
vsock, serial device and vmchannel, :mod:`.virt`), on one runner (:mod:`.runner`). The
signed transports share one client session (:mod:`.session`) and differ in how they reach
the host (:mod:`.multicast`, :mod:`.stream`); the serial ones share one serial exchange
(:mod:`.line`) over a serial port (:mod:`.device`) or a TCP connection (:mod:`.connect`).

Pacemaker starts an agent for every monitor, so start-up time is part of the contract. The
agents import the wire codec's constants and enums (:mod:`fence_virt.protocol`) and builtin C
modules at the top, the rest of the codec and sockets only when a request is about to be
sent: ``-o metadata``, ``-h`` and argument errors never touch the network code.

Start-up costs, measured. The codec and the agents use the standard means unless one adds
more than 1 ms to an agent's start. Below, the CPU time one change adds to ``fence_xvm -o
status`` against the C fence_virtd (a monitor takes the same path) and to ``-o metadata``:
``bench/client_startup.py --interleave --runs 300 --tree base=A --tree changed=B``, B being
A with that one change; medians of 300 to 500 interleaved runs, ranges over 2 or 3 such runs
in which two copies of A differed by 0.3 to 1.1 ms; 2-CPU Debian 12 test machine shared with
other work, CPython 3.11.7; the status run takes 33-37 ms there, a bare interpreter 15 ms.

==============================================  ==========  ============  =================
standard means instead                          status +ms  metadata +ms  so
==============================================  ==========  ============  =================
frozen slotted dataclasses for the 4 records    16 - 21     (not loaded)  kept
``typing.TYPE_CHECKING`` and ``typing.Final``   9 - 11      17            kept
:mod:`hashlib` for the three digests            3.7 - 5.1   (not loaded)  kept
:func:`hmac.compare_digest` (loads hashlib)     3.3 - 6.7   (not loaded)  kept
``fence_virt.protocol`` importing every module  -0.5 - 1.9  2.0 - 4.0     kept (lazy names)
wire constants and codes taken from the codec   -0.2 - 2.0  8.6 - 9.6     adopted (enum)
==============================================  ==========  ============  =================

The modules alone, ``python -X importtime -c "import socket, struct, enum; import M"``
(median of 15): dataclasses 11.5 ms, typing 5.4 ms, hashlib 2.8 ms, hmac 3.3 ms (0.5 ms once
hashlib is loaded). The last row is the price of not copying the codec's numbers: ``-o
metadata``, ``-h`` and argument errors now load :mod:`enum` (``-o status`` loads it anyway,
with :mod:`socket`); the kept rows are each worth more than 1 ms on every start.

``fence_virt -T`` takes the same path minus the netlink dump and the multicast sockets:
``bench/client_startup.py --agent fence_virt --interleave --runs 300`` against the C tcp
listener gave ``-o status`` 35.6 ms wall / 34.7 ms CPU (C 3.4 / 2.8, bare interpreter 14.8 /
14.4); ``--agent fence_xvm`` right after: 36.5 / 32.0 (bare 15.0 / 13.3). Moving the request
builder from the multicast module into the shared session cost nothing measurable
(``--tree`` A/B, 200 rounds: status 37.39 vs 37.33 ms CPU, metadata 27.52 vs 27.41).

Behaviour follows the C agent of fence-agents 4.12.1 (Debian 12) byte for byte where it can
be observed: option letters, stdin names, texts, the streams they go to (4.12.1 prints results
*and* errors on stdout; only getopt and stdin parse warnings go to stderr) and exit codes.
Deliberate differences are listed in :mod:`fence_virt.agents.runner`.
"""
