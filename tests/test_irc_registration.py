"""Logging in over IRC (SPEC §10): CAP, SASL PLAIN, PASS, and the numerics of failures."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.conftest import RunningServer
from tests.irc_helpers import IrcClient, IrcServer, plain, start_irc


@pytest.fixture
def irc(make_server: Callable[..., RunningServer]) -> IrcServer:
    return start_irc(make_server)


def test_sasl_plain_registers_and_joins_the_accounts_rooms(irc: IrcServer) -> None:
    client = irc.irc()
    client.send("CAP LS 302")
    client.send("NICK alice")
    client.send("USER alice 0 * :Alice")
    client.expect(r"^:irc\.test CAP \* LS :.*\bsasl=PLAIN\b")
    assert "server-time" in client.received[-1] and "echo-message" in client.received[-1]
    client.send("CAP REQ :sasl server-time")
    client.expect(r"^:irc\.test CAP alice ACK :sasl server-time$")
    client.send("AUTHENTICATE PLAIN")
    client.expect(r"^AUTHENTICATE \+$")
    client.send("AUTHENTICATE " + plain("alice", "pass123"))
    client.expect(r"^:irc\.test 900 alice alice!alice@chatd alice :")
    client.expect(r"^:irc\.test 903 alice :")
    client.send("CAP END")
    lines = client.lines_until(r" 366 alice #general ")
    assert lines[0] == ":irc.test 001 alice :Welcome to chatd, alice"
    isupport = next(line for line in lines if " 005 " in line)
    for token in ("CHANTYPES=#", "CASEMAPPING=ascii", "NICKLEN=32", "CHANNELLEN=33",
                  "TOPICLEN=300", "LINELEN=512"):  # fmt: skip
        assert f" {token} " in isupport
    assert any(" 376 alice " in line for line in lines)  # the end of the MOTD
    assert ":alice!alice@chatd JOIN #general" in lines
    assert ":irc.test 353 alice = #general :alice" in lines


def test_a_wrong_sasl_password_fails_and_may_be_retried_a_few_times(irc: IrcServer) -> None:
    client = irc.irc()
    client.send("CAP LS 302")
    client.send("NICK alice")
    client.send("USER a 0 * :a")
    client.send("CAP REQ :sasl")
    for attempt in range(3):
        client.send("AUTHENTICATE PLAIN")
        client.expect(r"^AUTHENTICATE \+$")
        client.send("AUTHENTICATE " + plain("alice", f"wrong{attempt}"))
        client.expect(r" 904 alice :SASL authentication failed")
    assert any(line.startswith("ERROR :Closing link") for line in client.wait_closed())


def test_sasl_abort_unknown_mechanism_and_already_logged_in(irc: IrcServer) -> None:
    client = irc.irc()
    client.send("CAP REQ :sasl")
    client.send("AUTHENTICATE SCRAM-SHA-256")
    client.expect(r" 908 \* PLAIN :")
    client.expect(r" 904 \* :")
    client.send("AUTHENTICATE PLAIN")
    client.send("AUTHENTICATE *")
    client.expect(r" 906 \* :SASL authentication aborted")
    client.send("AUTHENTICATE PLAIN")
    client.send("AUTHENTICATE " + plain("bob", "qwerty"))
    client.expect(r" 903 bob ")
    client.send("AUTHENTICATE PLAIN")
    client.expect(r" 907 bob ")
    client.send("NICK someone")  # the nick becomes the account's name anyway
    client.send("USER b 0 * :b")
    client.send("CAP END")
    client.expect(r"^:irc\.test 001 bob ")


def test_pass_with_the_account_as_nick(irc: IrcServer) -> None:
    client = irc.irc()
    client.register_pass("bob", "qwerty")


def test_pass_account_colon_password_whatever_the_nick(irc: IrcServer) -> None:
    client = irc.irc()
    client.send("PASS carol:carol-pw")
    client.send("NICK whoever")
    client.send("USER c 0 * :c")
    client.expect(r"^:irc\.test 001 carol ")


@pytest.mark.parametrize("password", ["wrong", None])
def test_a_bad_or_missing_password_is_464_then_error(irc: IrcServer, password: str | None) -> None:
    client = irc.irc()
    if password:
        client.send(f"PASS {password}")
    client.send("NICK alice")
    client.send("USER a 0 * :a")
    client.expect(r"^:irc\.test 464 alice :")
    assert client.wait_closed()[-1].startswith("ERROR :Closing link")


def test_cap_negotiation_without_302_lists_names_only_and_naks_unknown(irc: IrcServer) -> None:
    client = irc.irc()
    client.send("CAP LS")
    client.expect(r"^:irc\.test CAP \* LS :sasl server-time echo-message message-tags$")
    client.send("CAP REQ :server-time fancy-unknown")
    client.expect(r" CAP \* NAK :server-time fancy-unknown$")
    client.send("CAP REQ :echo-message")
    client.send("CAP LIST")
    client.expect(r" CAP \* LIST :echo-message$")
    client.send("CAP FROB")
    client.expect(r" 410 \* FROB :")


def test_commands_before_registration_are_refused(irc: IrcServer) -> None:
    client = irc.irc()
    client.send("PRIVMSG #general :hi")
    client.expect(r"^:irc\.test 451 \* :You have not registered")
    client.send("FROBNICATE")
    client.expect(r" 421 \* FROBNICATE :Unknown command")
    client.send("USER onlyone")
    client.expect(r" 461 \* USER :Not enough parameters")
    client.send("PING :early")
    client.expect(r"^:irc\.test PONG irc\.test :early$")


def test_the_nick_cannot_change_to_another(irc: IrcServer) -> None:
    client = irc.sasl("alice", "pass123")
    client.send("NICK Alice")  # the same name: nothing to say
    client.send("NICK bob")
    client.expect(r"^:irc\.test 484 alice :Your nick is your account name")
    client.send("USER again 0 * :x")
    client.expect(r" 462 alice :")


def test_a_client_that_never_registers_is_closed_at_the_deadline(
    make_server: Callable[..., RunningServer],
) -> None:
    irc = start_irc(make_server, login_deadline_s=1, silent_deadline_s=1)
    client = irc.irc()
    client.send("NICK alice")
    lines = client.wait_closed()
    assert lines[-1] == "ERROR :Closing link: chatd (login took too long; disconnecting.)"


def test_the_login_throttle_refuses_after_failures(
    make_server: Callable[..., RunningServer],
) -> None:
    irc = start_irc(make_server, throttle_account_after=1, throttle_max_delay_s=0)
    first = irc.irc()
    first.send("PASS wrong")
    first.send("NICK alice")
    first.send("USER a 0 * :a")
    first.expect(r" 464 alice :Password incorrect")
    second = irc.irc()
    second.send("CAP REQ :sasl")
    second.send("AUTHENTICATE PLAIN")
    second.send("AUTHENTICATE " + plain("alice", "pass123"))  # right, but refused unchecked
    second.expect(r" 904 \* :Too many failed logins")
    assert second.wait_closed()[-1].startswith("ERROR :Closing link")


def test_irc_over_tls(make_server: Callable[..., RunningServer], tmp_path) -> None:  # type: ignore[no-untyped-def]
    import socket
    import ssl

    import trustme

    authority = trustme.CA()
    certificate = authority.issue_cert("localhost", "127.0.0.1")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    certificate.cert_chain_pems[0].write_to_path(cert)
    certificate.private_key_pem.write_to_path(key)
    running = make_server(tls_cert=cert, tls_key=key, irc_tls_port=0, irc_server_name="irc.test")
    context = ssl.create_default_context()
    authority.configure_trust(context)
    client = IrcClient.__new__(IrcClient)
    raw = socket.create_connection(("127.0.0.1", running.server.irc_tls_port), timeout=10)
    client.sock = context.wrap_socket(raw, server_hostname="localhost")
    client.buffer, client.received, client.name = b"", [], ""
    client.register_pass("alice", "pass123")
