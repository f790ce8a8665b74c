"""The C fence_virt wire format, byte for byte: encode, decode, sign, verify.

This package does no I/O apart from reading key files: callers own the sockets and feed
bytes in, the codec hands immutable records back (they behave as frozen dataclasses).
Decoding untrusted bytes raises only :class:`fence_virt.errors.ProtocolError`;
authentication failures raise :class:`fence_virt.errors.AuthenticationError`. A request
whose signature verified but whose domain does not decode raises the ProtocolError subclass
:class:`UnservableRequest`, which carries the authentic fields: hosts answer it with failure.
"""

from __future__ import annotations

# Names load on first use (PEP 562): each guest agent imports only the submodules its
# operation needs. Importing every submodule here cost fence_xvm -o metadata 2.0-4.0 ms and
# -o status -0.5-1.9 ms (bench/client_startup.py --interleave; see fence_virt.agents).
TYPE_CHECKING = False  # not typing's: +9-11 ms per agent start, see fence_virt.agents
if TYPE_CHECKING:
    from fence_virt.protocol.auth import (
        challenge_response,
        check_challenge_response,
        exchange_required,
        new_challenge,
        sign_request,
        verify_request,
    )
    from fence_virt.protocol.constants import (
        ADDRESS_SIZE,
        AF_INET6_WIRE,
        AF_INET_WIRE,
        CHALLENGE_SIZE,
        DEFAULT_IPV4_GROUP,
        DEFAULT_IPV6_GROUP,
        DEFAULT_KEY_FILE,
        DEFAULT_PORT,
        DOMAIN_FIELD_SIZE,
        FENCE_REQ_SIZE,
        HASH_FIELD_SIZE,
        HOSTLIST_RECORD_SIZE,
        MAX_DOMAIN_BYTES,
        MAX_KEY_LEN,
        RANDOM_SIZE,
        RF_UUID,
        SERIAL_MAGIC,
        SERIAL_REQ_SIZE,
        SERIAL_RESP_SIZE,
    )
    from fence_virt.protocol.enums import HashType, Operation, RequestFlag, Response
    from fence_virt.protocol.exchange import AuthExchange
    from fence_virt.protocol.fence_request import FenceRequest, UnservableRequest, byte_swapped
    from fence_virt.protocol.hostlist import (
        HostListDecoder,
        HostState,
        encode_hostlist,
        encode_serial_hostlist,
    )
    from fence_virt.protocol.keyfile import KeyFileError, read_key_file
    from fence_virt.protocol.serial import SerialRequest, SerialResponse, SerialResponseScanner

__all__ = [
    "ADDRESS_SIZE",
    "AF_INET6_WIRE",
    "AF_INET_WIRE",
    "CHALLENGE_SIZE",
    "DEFAULT_IPV4_GROUP",
    "DEFAULT_IPV6_GROUP",
    "DEFAULT_KEY_FILE",
    "DEFAULT_PORT",
    "DOMAIN_FIELD_SIZE",
    "FENCE_REQ_SIZE",
    "HASH_FIELD_SIZE",
    "HOSTLIST_RECORD_SIZE",
    "MAX_DOMAIN_BYTES",
    "MAX_KEY_LEN",
    "RANDOM_SIZE",
    "RF_UUID",
    "SERIAL_MAGIC",
    "SERIAL_REQ_SIZE",
    "SERIAL_RESP_SIZE",
    "AuthExchange",
    "FenceRequest",
    "HashType",
    "HostListDecoder",
    "HostState",
    "KeyFileError",
    "Operation",
    "RequestFlag",
    "Response",
    "SerialRequest",
    "SerialResponse",
    "SerialResponseScanner",
    "UnservableRequest",
    "byte_swapped",
    "challenge_response",
    "check_challenge_response",
    "encode_hostlist",
    "encode_serial_hostlist",
    "exchange_required",
    "new_challenge",
    "read_key_file",
    "sign_request",
    "verify_request",
]

_LAZY = {
    "ADDRESS_SIZE": "constants",
    "AF_INET6_WIRE": "constants",
    "AF_INET_WIRE": "constants",
    "CHALLENGE_SIZE": "constants",
    "DEFAULT_IPV4_GROUP": "constants",
    "DEFAULT_IPV6_GROUP": "constants",
    "DEFAULT_KEY_FILE": "constants",
    "DEFAULT_PORT": "constants",
    "DOMAIN_FIELD_SIZE": "constants",
    "FENCE_REQ_SIZE": "constants",
    "HASH_FIELD_SIZE": "constants",
    "HOSTLIST_RECORD_SIZE": "constants",
    "MAX_DOMAIN_BYTES": "constants",
    "MAX_KEY_LEN": "constants",
    "RANDOM_SIZE": "constants",
    "RF_UUID": "constants",
    "SERIAL_MAGIC": "constants",
    "SERIAL_REQ_SIZE": "constants",
    "SERIAL_RESP_SIZE": "constants",
    "AuthExchange": "exchange",
    "FenceRequest": "fence_request",
    "HashType": "enums",
    "HostListDecoder": "hostlist",
    "HostState": "hostlist",
    "KeyFileError": "keyfile",
    "Operation": "enums",
    "RequestFlag": "enums",
    "Response": "enums",
    "SerialRequest": "serial",
    "SerialResponse": "serial",
    "SerialResponseScanner": "serial",
    "UnservableRequest": "fence_request",
    "byte_swapped": "fence_request",
    "challenge_response": "auth",
    "check_challenge_response": "auth",
    "encode_hostlist": "hostlist",
    "encode_serial_hostlist": "hostlist",
    "exchange_required": "auth",
    "new_challenge": "auth",
    "read_key_file": "keyfile",
    "sign_request": "auth",
    "verify_request": "auth",
}


# hidden from type checkers, which would otherwise accept any attribute of this package
if not TYPE_CHECKING:

    def __getattr__(name: str) -> object:
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        from importlib import import_module  # noqa: PLC0415

        value = getattr(import_module(f"{__name__}.{module}"), name)
        globals()[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*globals(), *__all__})
