"""The shared key, read before any delay or traffic; never silently left out."""

from __future__ import annotations

from fence_virt.agents.console import say, trace
from fence_virt.protocol.constants import MAX_KEY_LEN
from fence_virt.protocol.enums import HashType, Operation

TYPE_CHECKING = False  # not typing's: +9-11 ms per agent start, see fence_virt.agents
if TYPE_CHECKING:
    from fence_virt.agents.options import AgentArgs


def load_key(args: AgentArgs) -> bytes | None:
    """The key file's bytes, b"" when auth and hash are both none, None after an error.

    The C agent printed "trying without authentication" and sent an unsigned request that a
    default host drops, so the run ended in a 30-second timeout; we stop here instead. A run
    that fences prints C's ``-d 3`` lines about the read (``validate-all`` reads no key in C,
    so it prints none); C's buffer address is left out.
    """
    if args.auth is HashType.NONE and args.hash is HashType.NONE and not args.protocol_v2:
        return b""
    # only a run that sends needs the key file
    from fence_virt.protocol.keyfile import KeyFileError, read_key_file  # noqa: PLC0415

    debug = 0 if args.op == Operation.VALIDATEALL else args.debug
    trace(debug, 3, f"Reading in key file {args.key_file} ({MAX_KEY_LEN} max size)")
    try:
        key = read_key_file(args.key_file)
    except KeyFileError as exc:
        cause = exc.__cause__
        reason = cause.strerror if isinstance(cause, OSError) and cause.strerror else str(exc)
        trace(debug, 2, f"Error opening key file: {reason}")
        say(
            f"Could not read {args.key_file}: {reason}; not sending an unauthenticated "
            "request (set both auth and hash to none to fence without a key)"
        )
        return None
    if len(key) < MAX_KEY_LEN:
        trace(debug, 3, f"Stopped reading @ {len(key)} bytes")
    trace(debug, 3, f"Actual key length = {len(key)} bytes")
    if args.protocol_v2 and not key:
        say(f"Key file {args.key_file} is empty: protocol v2 (hash=v2) needs a key")
        return None
    return key
