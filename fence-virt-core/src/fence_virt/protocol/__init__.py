"""The C fence_virt wire format, byte for byte: encode, decode, sign, verify.

This package does no I/O apart from reading key files: callers own the sockets and feed
bytes in, the codec hands frozen dataclasses back. Decoding untrusted bytes raises only
:class:`fence_virt.errors.ProtocolError`; authentication failures raise
:class:`fence_virt.errors.AuthenticationError`.
"""

from __future__ import annotations

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
from fence_virt.protocol.fence_request import FenceRequest
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
