"""PROXY headers as a load balancer sends them, for the tests (chatd only reads them)."""

from __future__ import annotations

import ipaddress
import struct

SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def v1(source: str, source_port: int = 40000, dest: str = "", dest_port: int = 1024) -> bytes:
    """A v1 header for a TCP connection from `source`, as HAProxy's `send-proxy` sends it."""
    family = "TCP4" if ipaddress.ip_address(source).version == 4 else "TCP6"
    dest = dest or ("127.0.0.1" if family == "TCP4" else "::1")
    return f"PROXY {family} {source} {dest} {source_port} {dest_port}\r\n".encode()


def v2(
    source: str,
    source_port: int = 40000,
    dest: str = "",
    dest_port: int = 1024,
    *,
    tlvs: bytes = b"",
) -> bytes:
    """A v2 PROXY header for a TCP connection from `source` (HAProxy's `send-proxy-v2`)."""
    src = ipaddress.ip_address(source)
    dst = ipaddress.ip_address(dest or ("127.0.0.1" if src.version == 4 else "::1"))
    family = 0x11 if src.version == 4 else 0x21
    addresses = src.packed + dst.packed + struct.pack("!HH", source_port, dest_port)
    return v2_raw(0x21, family, addresses + tlvs)


def v2_local(tlvs: bytes = b"") -> bytes:
    """A v2 LOCAL header: the balancer's own connection, e.g. a health check."""
    return v2_raw(0x20, 0x00, tlvs)


def v2_raw(version_command: int, family: int, payload: bytes) -> bytes:
    return SIGNATURE + struct.pack("!BBH", version_command, family, len(payload)) + payload


def tlv(kind: int, value: bytes) -> bytes:
    return struct.pack("!BH", kind, len(value)) + value
