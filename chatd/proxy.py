"""The PROXY protocol (v1 and v2): the header a load balancer sends before its client's bytes.

Pure functions, no sockets. `parse_header` takes the bytes received so far
and returns the header (with the client's real address), or how many more
bytes it needs at the least, or raises `ProxyHeaderError`. "At the least" is
exact enough to read a header without reading a byte past its end: what
follows belongs to the TLS handshake or to the client's first line.

Strict on purpose, since a header decides which address every limit sees:
a v1 header is at most 107 bytes, a v2 header at most 16 + `V2_MAX_PAYLOAD`;
addresses and ports must be well formed (no leading zeros, no IPv6 scope);
v2's TLVs must fit, though their CRC32C, if any, is not checked. The
specification: haproxy.org/download/2.9/doc/proxy-protocol.txt.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from functools import cache

V1_PREFIX = b"PROXY "
V1_MAX = 107  # the longest v1 header, "\r\n" included (from the specification)
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V2_FIXED = 16  # signature, version and command, family and protocol, payload length
V2_MAX_PAYLOAD = 512  # addresses and TLVs; HAProxy sends 12 or 36 bytes, AWS a few TLVs more
SHORTEST = 15  # b"PROXY UNKNOWN\r\n"; a v2 header is at least 16

_LOCAL, _PROXY = 0x0, 0x1
_TCP4, _TCP6, _UNSPEC, _UNIX_STREAM = 0x11, 0x21, 0x00, 0x31
_ADDRESS_BYTES = {_TCP4: 12, _TCP6: 36, _UNSPEC: 0, _UNIX_STREAM: 216}
_V1_FIELDS = 5  # TCP4 source destination source-port destination-port

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ProxyHeaderError(ValueError):
    """The bytes are not a valid PROXY header; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class ProxyHeader:
    """A whole header of `length` bytes. `client` is the real client's (address, port),
    or None where the balancer speaks for itself (v2 LOCAL, v1 UNKNOWN) and the
    connection's own address stands."""

    length: int
    client: tuple[str, int] | None


@dataclass(frozen=True, slots=True)
class NeedMore:
    """The header is not complete: it is at least `at_least` bytes longer than what came."""

    at_least: int


def parse_header(data: bytes) -> ProxyHeader | NeedMore:
    """The header at the start of `data`, or how much more is needed; ProxyHeaderError if
    `data` cannot be the start of a valid one."""
    if data.startswith(V2_SIGNATURE):
        return _parse_v2(data)
    if data.startswith(V1_PREFIX):
        return _parse_v1(data)
    if V2_SIGNATURE.startswith(data) or V1_PREFIX.startswith(data):
        return NeedMore(SHORTEST - len(data))
    raise ProxyHeaderError("no PROXY protocol signature")


def starts_like_header(data: bytes) -> bool | None:
    """Whether `data` begins with a PROXY signature (v1 or v2); None while too short to tell."""
    if data.startswith((V1_PREFIX, V2_SIGNATURE)):
        return True
    if V1_PREFIX.startswith(data) or V2_SIGNATURE.startswith(data):
        return None
    return False


# --- version 2: binary ----------------------------------------------------------


def _parse_v2(data: bytes) -> ProxyHeader | NeedMore:
    if len(data) < V2_FIXED:
        return NeedMore(V2_FIXED - len(data))
    version_command, family, payload_length = struct.unpack_from("!BBH", data, 12)
    if version_command >> 4 != 2:
        raise ProxyHeaderError(f"v2 header with version {version_command >> 4}")
    command = version_command & 0x0F
    if command not in (_LOCAL, _PROXY):
        raise ProxyHeaderError(f"v2 header with unknown command {command}")
    if payload_length > V2_MAX_PAYLOAD:
        raise ProxyHeaderError(f"v2 header of {payload_length} bytes (at most {V2_MAX_PAYLOAD})")
    length = V2_FIXED + payload_length
    if len(data) < length:
        return NeedMore(length - len(data))
    payload = data[V2_FIXED:length]
    if command == _LOCAL:  # the balancer's own connection (a health check): no address
        return ProxyHeader(length, None)
    address_bytes = _ADDRESS_BYTES.get(family)
    if address_bytes is None:
        raise ProxyHeaderError(f"v2 header for family/protocol 0x{family:02x}, not TCP")
    if payload_length < address_bytes:
        raise ProxyHeaderError(f"v2 header with {payload_length} bytes of addresses")
    _check_tlvs(payload[address_bytes:])
    if family == _TCP4:
        (port,) = struct.unpack_from("!H", payload, 8)
        return ProxyHeader(length, _client(ipaddress.IPv4Address(payload[0:4]), port))
    if family == _TCP6:
        (port,) = struct.unpack_from("!H", payload, 32)
        return ProxyHeader(length, _client(ipaddress.IPv6Address(payload[0:16]), port))
    return ProxyHeader(length, None)  # UNSPEC or a Unix socket: no IP address to use


def _check_tlvs(tlvs: bytes) -> None:
    """Each TLV (type, 2-byte length, value) must fit in what is left of the header."""
    at = 0
    while at < len(tlvs):
        if len(tlvs) - at < 3:
            raise ProxyHeaderError("v2 header with a TLV cut short")
        (size,) = struct.unpack_from("!H", tlvs, at + 1)
        at += 3 + size
        if at > len(tlvs):
            raise ProxyHeaderError("v2 header with a TLV running past its end")


# --- version 1: one line of text ------------------------------------------------


def _parse_v1(data: bytes) -> ProxyHeader | NeedMore:
    end = data.find(b"\n")
    if end == -1:
        at_least = _v1_at_least(data)
        if len(data) + at_least > V1_MAX:
            raise ProxyHeaderError(f"v1 header longer than {V1_MAX} bytes")
        return NeedMore(at_least)
    length = end + 1
    if length > V1_MAX:
        raise ProxyHeaderError(f"v1 header longer than {V1_MAX} bytes")
    if data[end - 1 : end] != b"\r":
        raise ProxyHeaderError("v1 header not ended by CRLF")
    fields = data[len(V1_PREFIX) : end - 1].split(b" ")
    if fields[0] == b"UNKNOWN":  # the rest of the line is to be ignored
        return ProxyHeader(length, None)
    _check_v1_fields(fields)
    if len(fields) != _V1_FIELDS:
        raise ProxyHeaderError(f"v1 header with {len(fields)} fields instead of {_V1_FIELDS}")
    version = 4 if fields[0] == b"TCP4" else 6
    source = _v1_address(fields[1], version)
    _v1_address(fields[2], version)
    source_port = _v1_port(fields[3])
    _v1_port(fields[4])
    return ProxyHeader(length, _client(source, source_port))


def _v1_at_least(data: bytes) -> int:
    """How many more bytes an unfinished v1 header needs at the least."""
    if data.endswith(b"\r"):
        return 1  # the "\n"
    fields = data[len(V1_PREFIX) :].split(b" ")
    if fields[0] == b"UNKNOWN" or len(fields) == 1:
        if len(fields) == 1 and not any(
            protocol.startswith(fields[0]) for protocol in (b"TCP4", b"TCP6", b"UNKNOWN")
        ):
            raise ProxyHeaderError(f"v1 header for protocol {_shown(fields[0])}")
        return 2  # "\r\n"
    _check_v1_fields(fields)
    # Every field still to come needs a space and a character, then "\r\n" ends the line.
    return 2 + 2 * (_V1_FIELDS - len(fields)) + (fields[-1] == b"")


def _check_v1_fields(fields: list[bytes]) -> None:
    if fields[0] not in (b"TCP4", b"TCP6"):
        raise ProxyHeaderError(f"v1 header for protocol {_shown(fields[0])}")
    if b"" in fields[:-1]:
        raise ProxyHeaderError("v1 header with an empty field")
    if len(fields) > _V1_FIELDS:
        raise ProxyHeaderError(f"v1 header with more than {_V1_FIELDS} fields")


def _v1_address(text: bytes, version: int) -> IPAddress:
    try:
        address = ipaddress.ip_address(text.decode("ascii"))
    except ValueError:  # UnicodeDecodeError is one too
        raise ProxyHeaderError(f"v1 header with a bad address {_shown(text)}") from None
    if address.version != version or "%" in str(address):
        raise ProxyHeaderError(f"v1 header with a bad address {_shown(text)}")
    return address


def _v1_port(text: bytes) -> int:
    if not text.isdigit() or (text.startswith(b"0") and text != b"0") or int(text) > 65535:
        raise ProxyHeaderError(f"v1 header with a bad port {_shown(text)}")
    return int(text)


def _shown(text: bytes) -> str:
    """Bytes from the wire as they may appear in a log line."""
    return repr(text[:48])[1:]


# --- addresses ------------------------------------------------------------------------


def _client(address: IPAddress, port: int) -> tuple[str, int]:
    return str(_unmapped(address)), port


def _unmapped(address: IPAddress) -> IPAddress:
    """::ffff:203.0.113.7 (an IPv4 client on a dual-stack socket) is 203.0.113.7."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@cache
def parse_networks(spec: str) -> tuple[Network, ...]:
    """The networks of a comma-separated list of addresses and networks
    ("127.0.0.1,10.0.0.0/8,::1"); ValueError naming the first bad entry."""
    networks = []
    for entry in (part.strip() for part in spec.split(",")):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry))
        except ValueError:
            try:
                meant = ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address or network") from None
            raise ValueError(f"{entry!r} has host bits set: did you mean {meant}?") from None
    return tuple(networks)


def is_listed(address: str, networks: tuple[Network, ...]) -> bool:
    """Whether the IP address `address` is in one of `networks`."""
    if not networks:
        return False
    try:
        ip = _unmapped(ipaddress.ip_address(address))
    except ValueError:
        return False
    return any(ip in network for network in networks)
