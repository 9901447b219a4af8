"""Behind a load balancer: PROXY headers from listed addresses name the client, over real sockets.

The test client plays the balancer on 127.0.0.1 (listed) or 127.0.0.2 (not
listed) and claims to speak for 203.0.113.7 or 198.51.100.9.
"""

from __future__ import annotations

import logging
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest
import trustme

from chatd import balancer
from tests.conftest import TIMEOUT, LineClient, RunningServer, wait_for
from tests.proxy_helpers import v1, v2, v2_local
from tests.test_serve_command import chatd_command

BALANCER = "127.0.0.1"
CLIENT = "203.0.113.7"
OTHER = "198.51.100.9"
REFUSED = "Error: PROXY protocol is not accepted from your address."


def _via_balancer(server: RunningServer, header: bytes, source: str | None = None) -> LineClient:
    client = LineClient(server.port, source=source)
    client.send(header)
    return client


def _attempt(server: RunningServer, header: bytes, username: str, password: str) -> str:
    client = _via_balancer(server, header)
    client.expect("^Username:")
    client.send(username)
    client.expect("^Password:")
    client.send(password)
    answer = client.expect("^(Welcome|Login failed)").string
    client.close()
    return answer


# --- a listed balancer -------------------------------------------------------------


def test_per_address_limits_count_the_client_not_the_balancer(make_server) -> None:  # type: ignore[no-untyped-def]
    server: RunningServer = make_server(proxy_protocol_from=BALANCER, max_per_address=2)
    first, second = _via_balancer(server, v1(CLIENT, 1)), _via_balancer(server, v2(CLIENT, 2))
    first.expect("^Username:")
    second.expect("^Username:")
    third = _via_balancer(server, v1(CLIENT, 3))
    assert third.wait_closed() == ["Error: too many connections from your address."]
    other = _via_balancer(server, v2(OTHER))  # the fourth from the balancer gets in
    other.expect("^Username:")
    assert server.server._per_address == {CLIENT: 2, OTHER: 1}
    first.close()
    wait_for(lambda: server.server._per_address == {CLIENT: 1, OTHER: 1}, what="a free place")
    _via_balancer(server, v2(CLIENT, 4)).expect("^Username:")


def test_the_login_throttle_keys_on_the_client(make_server) -> None:  # type: ignore[no-untyped-def]
    server: RunningServer = make_server(
        proxy_protocol_from=BALANCER, throttle_address_after=2, throttle_max_delay_s=0
    )
    for name in ("guess1", "guess2"):
        assert _attempt(server, v1(CLIENT), name, "x").startswith("Login failed. Try again")
    refused = _attempt(server, v2(CLIENT), "alice", "pass123")
    assert refused.startswith("Login failed. Too many")
    assert _attempt(server, v1(OTHER), "alice", "pass123").startswith("Welcome, alice!")


def test_log_lines_show_the_client(make_server, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.INFO)
    server: RunningServer = make_server(proxy_protocol_from=BALANCER)
    _via_balancer(server, v1(CLIENT, 51234)).login("alice", "pass123")
    _via_balancer(server, v2("2001:db8::7", 443)).login("bob", "qwerty")
    wait_for(lambda: f"{CLIENT}:51234: alice logged in" in caplog.text, what="alice's log line")
    wait_for(lambda: "2001:db8::7:443: bob logged in" in caplog.text, what="bob's log line")


@pytest.mark.parametrize(
    "header", [v2_local(), b"PROXY UNKNOWN\r\n"], ids=["v2-LOCAL", "v1-UNKNOWN"]
)
def test_a_health_check_keeps_the_balancers_address(make_server, header: bytes) -> None:  # type: ignore[no-untyped-def]
    server: RunningServer = make_server(proxy_protocol_from=BALANCER)
    client = _via_balancer(server, header)  # kept: a dropped socket would close at once
    client.expect("^Username:")
    assert server.server._per_address == {BALANCER: 1}
    client.close()


def test_the_header_and_the_first_lines_may_come_in_one_packet(make_server) -> None:  # type: ignore[no-untyped-def]
    server: RunningServer = make_server(proxy_protocol_from=f"10.0.0.0/8,{BALANCER},::1")
    for header in (v1(CLIENT), v2(CLIENT)):
        client = _via_balancer(server, header + b"alice\npass123\nHello\n")
        client.expect("^Welcome, alice!")
        client.expect("^You said: Hello$")


def test_a_header_may_come_a_byte_at_a_time(make_server) -> None:  # type: ignore[no-untyped-def]
    server: RunningServer = make_server(proxy_protocol_from=BALANCER)
    clients = [LineClient(server.port), LineClient(server.port)]
    for client, header in zip(clients, (v1(CLIENT), v2(OTHER)), strict=True):
        client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for byte in header:
            client.send(bytes([byte]))
            time.sleep(0.001)
        client.expect("^Username:")
    assert server.server._per_address == {CLIENT: 1, OTHER: 1}


def test_a_listed_connection_without_a_valid_header_is_closed_silently(  # type: ignore[no-untyped-def]
    make_server, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(balancer, "HEADER_DEADLINE_S", 0.5)
    server: RunningServer = make_server(proxy_protocol_from=BALANCER)
    started = time.monotonic()
    assert server.connect().wait_closed() == []  # sends nothing
    assert 0.4 < time.monotonic() - started < 5
    assert _via_balancer(server, b"alice\r\n").wait_closed() == []  # a client, not a balancer
    assert _via_balancer(server, b"PROXY TCP4 1.2.3.4 5.6.7.8 99999 1\r\n").wait_closed() == []
    assert "closed: no PROXY header within 0.5 s" in caplog.text
    assert "closed: bad PROXY header: no PROXY protocol signature" in caplog.text
    assert "closed: bad PROXY header: v1 header with a bad port '99999'" in caplog.text
    assert not server.server._connections  # none of them was ever counted


# --- anyone else ---------------------------------------------------------------------


@pytest.mark.parametrize("listed", [BALANCER, None], ids=["another-listed", "none-listed"])
@pytest.mark.parametrize("header", [v1(CLIENT), v2(CLIENT)], ids=["v1", "v2"])
def test_a_proxy_header_from_an_address_not_listed_is_refused(  # type: ignore[no-untyped-def]
    make_server, caplog: pytest.LogCaptureFixture, listed: str | None, header: bytes
) -> None:
    server: RunningServer = make_server(proxy_protocol_from=listed)
    impostor = _via_balancer(server, header + b"alice\npass123\n", source="127.0.0.2")
    assert impostor.wait_closed()[-1] == REFUSED
    assert "127.0.0.2" in caplog.text
    assert "refused: a PROXY header, from an address --proxy-protocol-from does not list" in (
        caplog.text
    )
    honest = LineClient(server.port, source="127.0.0.2")  # plain clients there are welcome
    honest.login("alice", "pass123")
    honest.send("PROXY TCP4 is just words once logged in")
    honest.expect("^You said: PROXY TCP4 is just words once logged in$")


def test_a_username_that_starts_like_a_header_is_a_failed_login(server: RunningServer) -> None:
    client = server.connect()
    client.expect("^Username:")
    client.send("PROXY")  # no space after it: not a header
    client.expect("^Password:")


# --- with TLS ------------------------------------------------------------------------


@pytest.fixture
def tls_context(tmp_path: Path) -> tuple[dict[str, Path], ssl.SSLContext]:
    authority = trustme.CA()
    cert = authority.issue_cert("127.0.0.1")
    files = {"tls_cert": tmp_path / "cert.pem", "tls_key": tmp_path / "key.pem"}
    cert.cert_chain_pems[0].write_to_path(str(files["tls_cert"]))
    cert.private_key_pem.write_to_path(str(files["tls_key"]))
    context = ssl.create_default_context()
    authority.configure_trust(context)
    return files, context


class _TLSAfterHeader:
    """A TLS client socket whose PROXY header goes out in the same packet as its
    ClientHello, as a balancer may send them: the server must read no byte too many."""

    def __init__(self, port: int, context: ssl.SSLContext, header: bytes) -> None:
        self._raw = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self._in, self._out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._in, self._out, server_hostname="127.0.0.1")
        first = header
        while True:
            try:
                self._tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._raw.sendall(first + self._out.read())
                first = b""
                if not self._receive():
                    raise ConnectionResetError("closed during the TLS handshake") from None
        self._raw.sendall(self._out.read())

    def _receive(self) -> bool:
        data = self._raw.recv(65536)
        self._in.write(data)
        return bool(data)

    def sendall(self, data: bytes) -> None:
        self._tls.write(data)
        self._raw.sendall(self._out.read())

    def recv(self, size: int) -> bytes:
        while True:
            try:
                return self._tls.read(size)
            except ssl.SSLWantReadError:
                if not self._receive():
                    return b""
            except ssl.SSLZeroReturnError:
                return b""

    def settimeout(self, timeout: float) -> None:
        self._raw.settimeout(timeout)

    def close(self) -> None:
        self._raw.close()


def _tls_client(port: int, context: ssl.SSLContext, header: bytes) -> LineClient:
    client = LineClient.__new__(LineClient)
    client.sock = _TLSAfterHeader(port, context, header)  # type: ignore[assignment]
    client.buffer, client.received, client.name = b"", [], ""
    return client


def test_with_tls_the_header_comes_before_the_handshake(  # type: ignore[no-untyped-def]
    make_server, tls_context: tuple[dict[str, Path], ssl.SSLContext]
) -> None:
    files, context = tls_context
    server: RunningServer = make_server(proxy_protocol_from=BALANCER, **files)
    alice = _tls_client(server.port, context, v2(CLIENT))
    alice.login("alice", "pass123")
    bob = _tls_client(server.port, context, v1(OTHER))
    bob.login("bob", "qwerty")
    bob.send("over TLS, behind a balancer")
    alice.expect("^bob: over TLS, behind a balancer$")
    assert server.server._per_address == {CLIENT: 1, OTHER: 1}
    with pytest.raises(OSError):  # a TLS client that the balancer did not announce
        _tls_client(server.port, context, b"")
    impostor = socket.create_connection(("127.0.0.1", server.port), source_address=("127.0.0.2", 0))
    impostor.settimeout(TIMEOUT)
    impostor.sendall(v1(CLIENT))  # a header where a TLS handshake should be: dropped
    assert impostor.recv(100) == b""


# --- the setting ---------------------------------------------------------------------


def test_a_bad_entry_stops_the_server_with_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [*chatd_command(), "serve", "--proxy-protocol-from", "127.0.0.1,10.0.0.300"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert result.returncode == 2
    assert "--proxy-protocol-from: '10.0.0.300' is not an IP address or network" in result.stderr
