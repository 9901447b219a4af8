"""The PROXY header parser (chatd/proxy.py): strict, bounded, and never reads past a header."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatd.proxy import (
    V1_MAX,
    V2_FIXED,
    V2_MAX_PAYLOAD,
    NeedMore,
    ProxyHeader,
    ProxyHeaderError,
    is_listed,
    parse_header,
    parse_networks,
    starts_like_header,
)
from tests.proxy_helpers import SIGNATURE, tlv, v1, v2, v2_local, v2_raw

FIRST_LINE = b"alice\r\n"  # what the client sends after the header: never part of it

# --- valid headers ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "client"),
    [
        (b"PROXY TCP4 203.0.113.7 127.0.0.1 51234 1024\r\n", ("203.0.113.7", 51234)),
        (b"PROXY TCP6 2001:db8::7 ::1 0 65535\r\n", ("2001:db8::7", 0)),
        (b"PROXY TCP6 ::ffff:203.0.113.7 ::1 1 2\r\n", ("203.0.113.7", 1)),  # IPv4-mapped
        (
            b"PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
            b" ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n",  # the longest: 104 bytes
            ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535),
        ),
        (b"PROXY UNKNOWN\r\n", None),
        (b"PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n", None),
    ],
)
def test_v1_headers_name_the_client(header: bytes, client: tuple[str, int] | None) -> None:
    assert parse_header(header + FIRST_LINE) == ProxyHeader(len(header), client)


@pytest.mark.parametrize(
    ("header", "client"),
    [
        (v2("203.0.113.7", 51234), ("203.0.113.7", 51234)),
        (v2("2001:db8::7", 443, "2001:db8::1"), ("2001:db8::7", 443)),
        (v2("::ffff:203.0.113.7", 9), ("203.0.113.7", 9)),
        (v2("203.0.113.7", 1, tlvs=tlv(0x04, b"\0" * 40)), ("203.0.113.7", 1)),  # NOOP padding
        (
            v2("2001:db8::7", 2, tlvs=tlv(0x02, b"chat.example") + tlv(0xEA, b"")),
            ("2001:db8::7", 2),
        ),
        (v2_local(), None),  # a health check: the balancer's own address stands
        (v2_local(tlvs=tlv(0x05, b"id")), None),
        (v2_raw(0x21, 0x00, b""), None),  # PROXY with family UNSPEC
        (v2_raw(0x21, 0x31, b"/run/lb.sock".ljust(216, b"\0")), None),  # from a Unix socket
        (v2_raw(0x20, 0x12, b"ignored" * 2), None),  # LOCAL ignores family and addresses
    ],
)
def test_v2_headers_name_the_client(header: bytes, client: tuple[str, int] | None) -> None:
    assert parse_header(header + FIRST_LINE) == ProxyHeader(len(header), client)


def test_the_longest_v2_header_is_accepted() -> None:
    header = v2("203.0.113.7", tlvs=tlv(0x04, b"\0" * (V2_MAX_PAYLOAD - 12 - 3)))
    assert len(header) == V2_FIXED + V2_MAX_PAYLOAD
    assert parse_header(header) == ProxyHeader(len(header), ("203.0.113.7", 40000))


# --- truncated headers -----------------------------------------------------------

VALID = [
    v1("203.0.113.7"),
    v1("2001:db8::7", 65535),
    b"PROXY UNKNOWN\r\n",
    b"PROXY UNKNOWN whatever\r\n",
    v2("203.0.113.7"),
    v2("2001:db8::7", tlvs=tlv(1, b"h2")),
    v2_local(),
]


@pytest.mark.parametrize("header", VALID)
def test_every_truncated_header_needs_more_and_never_more_than_is_left(header: bytes) -> None:
    for cut in range(len(header)):
        result = parse_header(header[:cut])
        assert isinstance(result, NeedMore), header[:cut]
        assert 1 <= result.at_least <= len(header) - cut, header[:cut]


@pytest.mark.parametrize("header", VALID)
def test_reading_what_it_asks_for_takes_few_reads_and_stops_at_the_end(header: bytes) -> None:
    stream, received, reads = header + b"hello\r\n", 0, 0
    while isinstance(result := parse_header(stream[:received]), NeedMore):
        received += result.at_least
        reads += 1
    assert received == result.length == len(header)
    assert reads <= 8


# --- what is refused -------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"GET / HTTP/1.1\r\n", "no PROXY protocol signature"),
        (b"alice\r\n", "no PROXY protocol signature"),
        (b"\x16\x03\x01\x02\x00\x01", "no PROXY protocol signature"),  # a TLS ClientHello
        (b"proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "no PROXY protocol signature"),
        (b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", "protocol"),
        (b"PROXY UDP4", "protocol"),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", "CRLF"),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", "fields"),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", "fields"),
        (b"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", "empty field"),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", "fields"),
        (b"PROXY TCP4 2001:db8::1 5.6.7.8 1 2\r\n", "bad address"),
        (b"PROXY TCP6 1.2.3.4 ::1 1 2\r\n", "bad address"),
        (b"PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n", "bad address"),
        (b"PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n", "bad address"),
        (b"PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n", "bad address"),
        (b"PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n", "bad address"),
        ("PROXY TCP4 １.2.3.4 5.6.7.8 1 2\r\n".encode(), "bad address"),
        (b"PROXY TCP4 1.2.3.4\r 5.6.7.8 1 2\r\n", "bad address"),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", "bad port"),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 99999999999999999999\r\n", "bad port"),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n", "bad port"),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n", "bad port"),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n", "bad port"),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1_0 2\r\n", "bad port"),
        (b"PROXY UNKNOWN " + b"x" * 100 + b"\r\n", "longer than 107"),
        (b"PROXY UNKNOWN " + b"x" * 100, "longer than 107"),  # refused before its end comes
        (b"PROXY TCP4 " + b"1" * 100, "longer than 107"),
        (v2_raw(0x11, 0x11, bytes(12)), "version 1"),
        (v2_raw(0x22, 0x11, bytes(12)), "unknown command 2"),
        (SIGNATURE + struct.pack("!BBH", 0x21, 0x11, V2_MAX_PAYLOAD + 1), "at most 512"),
        (SIGNATURE + b"\x21\x11\xff\xff", "at most 512"),
        (v2_raw(0x21, 0x12, bytes(12)), "not TCP"),  # UDP over IPv4
        (v2_raw(0x21, 0x41, bytes(12)), "not TCP"),
        (v2_raw(0x21, 0x11, bytes(11)), "11 bytes of addresses"),
        (v2_raw(0x21, 0x21, bytes(12)), "12 bytes of addresses"),
        (v2("1.2.3.4", tlvs=b"\x01\x00"), "TLV cut short"),
        (v2("1.2.3.4", tlvs=tlv(1, b"h2")[:-1]), "TLV running past"),
        (b"\r\n\r\n\x00\r\nQUIT\r", "no PROXY protocol signature"),
    ],
)
def test_bad_headers_are_refused_with_the_reason(data: bytes, why: str) -> None:
    with pytest.raises(ProxyHeaderError, match=why):
        parse_header(data)


def test_a_header_cannot_grow_past_its_bound() -> None:
    for data in (b"PROXY UNKNOWN " + b"x" * 200, v2("1.2.3.4") + b"x" * 600):
        lengths = []
        for cut in range(len(data)):
            try:
                result = parse_header(data[:cut])
            except ProxyHeaderError:
                break
            if isinstance(result, ProxyHeader):
                lengths.append(result.length)
                break
            lengths.append(cut + result.at_least)
        assert max(lengths) <= V2_FIXED + V2_MAX_PAYLOAD
        assert data.startswith(SIGNATURE) or max(lengths) <= V1_MAX


# --- fuzzing ------------------------------------------------------------------------

_starts = st.sampled_from([b"", b"PROXY ", b"PROXY TCP4 ", b"PROXY TCP6 ", SIGNATURE])
_families = st.sampled_from([0x00, 0x11, 0x12, 0x21, 0x31, 0x42])


@given(start=_starts, data=st.binary(max_size=600))
def test_arbitrary_bytes_give_a_header_a_need_or_a_proxy_header_error(
    start: bytes, data: bytes
) -> None:
    _check_any(start + data)


@given(
    command=st.integers(0, 255),
    family=_families,
    payload=st.binary(max_size=300),
    declared=st.one_of(st.none(), st.integers(0, 65535)),
)
def test_arbitrary_v2_headers_give_a_header_a_need_or_a_proxy_header_error(
    command: int, family: int, payload: bytes, declared: int | None
) -> None:
    length = len(payload) if declared is None else declared
    _check_any(SIGNATURE + struct.pack("!BBH", command, family, length) + payload)


@given(
    fields=st.lists(
        st.one_of(
            st.sampled_from(["TCP4", "TCP6", "UNKNOWN", "1.2.3.4", "::1", "0", "65535", ""]),
            st.text(max_size=12),
        ),
        max_size=7,
    ),
    end=st.sampled_from(["\r\n", "\n", "\r", ""]),
)
def test_arbitrary_v1_lines_give_a_header_a_need_or_a_proxy_header_error(
    fields: list[str], end: str
) -> None:
    _check_any(("PROXY " + " ".join(fields) + end).encode("utf-8", "surrogatepass"))


def _check_any(data: bytes) -> None:
    try:
        result = parse_header(data)
    except ProxyHeaderError:
        return
    if isinstance(result, NeedMore):
        assert result.at_least >= 1
        assert len(data) + result.at_least <= V2_FIXED + V2_MAX_PAYLOAD
    else:
        assert 0 < result.length <= len(data)
        assert parse_header(data[: result.length]) == result  # nothing after it was used


@given(header=st.sampled_from(VALID), rest=st.binary(max_size=50), cut=st.integers(0, 200))
def test_a_valid_header_parses_the_same_whatever_follows(
    header: bytes, rest: bytes, cut: int
) -> None:
    whole = parse_header(header)
    assert isinstance(whole, ProxyHeader)
    assert parse_header(header + rest) == whole
    if cut < len(header):
        needed = parse_header(header[:cut])
        assert isinstance(needed, NeedMore)
        assert cut + needed.at_least <= len(header)


# --- telling a header apart, and who may send one ----------------------------------


@pytest.mark.parametrize(
    ("data", "verdict"),
    [
        (b"PROXY TCP4 ", True),
        (SIGNATURE, True),
        (b"PROXY ", True),
        (b"PROX", None),
        (b"\r\n", None),
        (b"", None),
        (b"PROXY\n", False),
        (b"Paul\n", False),
        (b"\r\nalice\r\n", False),
    ],
)
def test_starts_like_header(data: bytes, verdict: bool | None) -> None:
    assert starts_like_header(data) is verdict


def test_listed_addresses_and_networks() -> None:
    networks = parse_networks("127.0.0.1, 10.0.0.0/8,::1,")
    assert len(networks) == 3
    assert is_listed("127.0.0.1", networks)
    assert is_listed("10.20.30.40", networks)
    assert is_listed("::1", networks)
    assert is_listed("::ffff:10.0.0.1", networks)  # IPv4 on a dual-stack socket
    assert not is_listed("127.0.0.2", networks)
    assert not is_listed("2001:db8::1", networks)
    assert not is_listed("", networks)
    assert not is_listed("127.0.0.1", parse_networks(""))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("10.0.0.300", "'10.0.0.300' is not an IP address or network"),
        ("127.0.0.1,localhost", "'localhost' is not an IP address or network"),
        ("10.0.0.1/8", "'10.0.0.1/8' has host bits set: did you mean 10.0.0.0/8?"),
        ("::1/129", "'::1/129' is not an IP address or network"),
    ],
)
def test_bad_entries_are_named(spec: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_networks(spec)
    assert str(caught.value) == message
