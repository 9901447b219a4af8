"""The server's TLS: the handshake runs off the accept path, under its own deadline."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

import pytest
import trustme

from tests.conftest import TIMEOUT, LineClient, RunningServer, wait_for


@pytest.fixture
def tls_server(make_server, tmp_path: Path) -> tuple[RunningServer, ssl.SSLContext]:  # type: ignore[no-untyped-def]
    authority = trustme.CA()
    cert = authority.issue_cert("127.0.0.1")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    server = make_server(tls_cert=cert_file, tls_key=key_file, tls_handshake_s=1)
    client_context = ssl.create_default_context()
    authority.configure_trust(client_context)
    return server, client_context


def _tls_client(server: RunningServer, context: ssl.SSLContext) -> LineClient:
    client = LineClient.__new__(LineClient)
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)
    client.sock = context.wrap_socket(raw, server_hostname="127.0.0.1")
    client.buffer, client.received, client.name = b"", [], ""
    return client


def test_a_silent_tls_client_blocks_no_one_and_is_dropped(
    tls_server: tuple[RunningServer, ssl.SSLContext],
) -> None:
    server, context = tls_server
    silent = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)  # no hello
    alice = _tls_client(server, context)
    alice.login("alice", "pass123")
    alice.send("over TLS while someone stalls")
    alice.expect("^You said: over TLS while someone stalls$")
    silent.settimeout(TIMEOUT)
    assert silent.recv(100) == b""  # closed by the server after the handshake deadline
    wait_for(lambda: len(server.server._connections) == 1, what="the silent client to go")


def test_a_silent_tls_client_counts_against_the_limits(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    authority = trustme.CA()
    cert = authority.issue_cert("127.0.0.1")
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "c.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "k.pem"))
    server = make_server(tls_cert=tmp_path / "c.pem", tls_key=tmp_path / "k.pem", max_per_address=1)
    silent = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)
    wait_for(lambda: len(server.server._connections) == 1, what="the first connection")
    refused = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)
    assert refused.recv(100) == b""
    silent.close()


def test_plain_text_on_the_tls_port_is_dropped(
    tls_server: tuple[RunningServer, ssl.SSLContext],
) -> None:
    server, context = tls_server
    plain = LineClient(server.port)
    plain.send("alice")
    assert plain.wait_closed() == []
    alice = _tls_client(server, context)
    alice.login("alice", "pass123")
