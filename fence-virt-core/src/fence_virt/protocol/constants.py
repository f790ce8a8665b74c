"""Sizes, defaults and magic numbers of the C fence_virt wire format."""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: +9-11 ms per agent start, see fence_virt.agents
if TYPE_CHECKING:
    from typing import Final

# fence_req_t, c-suite-spec §2.2
FENCE_REQ_SIZE: Final = 176
#: MAX_DOMAIN_LEN: the domain field, NUL terminator included
DOMAIN_FIELD_SIZE: Final = 64
MAX_DOMAIN_BYTES: Final = DOMAIN_FIELD_SIZE - 1
#: sizeof(struct sockaddr_in6); IPv4/IPv6 addresses sit at its start, rest zero
ADDRESS_SIZE: Final = 28
RANDOM_SIZE: Final = 6
#: MAX_HASH_LENGTH (SHA-512); shorter digests are zero-padded (c-suite-spec §2.4)
HASH_FIELD_SIZE: Final = 64
HASH_OFFSET: Final = FENCE_REQ_SIZE - HASH_FIELD_SIZE
#: bit 0 of fence_req_t.flags: the domain field holds a UUID (c-suite-spec §2.3)
RF_UUID: Final = 0x01

# Linux AF_INET / AF_INET6 as carried in fence_req_t.family, c-suite-spec §2.2
AF_INET_WIRE: Final = 2
AF_INET6_WIRE: Final = 10
IPV4_ADDRLEN: Final = 4
IPV6_ADDRLEN: Final = 16

# challenge/response, c-suite-spec §3.2
CHALLENGE_SIZE: Final = 64

# host_state_t, c-suite-spec §2.6
HOSTLIST_RECORD_SIZE: Final = 130
#: RESP_HOSTLIST, the byte announcing a host-list stream
HOSTLIST_MARKER: Final = 0xFD

# serial_req_t / serial_resp_t, c-suite-spec §2.7
SERIAL_REQ_SIZE: Final = 74
SERIAL_RESP_SIZE: Final = 5
#: SERIAL_MAGIC 0x61626261 is a palindrome, so both byte orders give b"abba"
SERIAL_MAGIC: Final = b"abba"

# key file, c-suite-spec §3.1
MAX_KEY_LEN: Final = 4096
DEFAULT_KEY_FILE: Final = "/etc/cluster/fence_xvm.key"

# transport defaults, c-suite-spec §2.8
DEFAULT_PORT: Final = 1229
DEFAULT_IPV4_GROUP: Final = "225.0.0.12"
DEFAULT_IPV6_GROUP: Final = "ff05::3:1"
