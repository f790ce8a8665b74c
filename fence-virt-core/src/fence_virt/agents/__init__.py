"""Guest-side fence agents: ``fence_xvm`` (multicast) and the machinery ``fence_virt`` reuses.

Pacemaker starts an agent for every monitor, so start-up time is part of the contract. The
agents import the wire codec's constants and enums (:mod:`fence_virt.protocol`) and builtin C
modules at the top, the rest of the codec and sockets only when a request is about to be
sent: ``-o metadata``, ``-h`` and argument errors never touch the network code.

Behaviour follows the C agent of fence-agents 4.12.1 (Debian 12) byte for byte where it can
be observed: option letters, stdin names, texts, the streams they go to (4.12.1 prints results
*and* errors on stdout; only getopt and stdin parse warnings go to stderr) and exit codes.
Deliberate differences are listed in :mod:`fence_virt.agents.runner`.
"""
