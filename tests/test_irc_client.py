"""A real IRC client nobody here wrote (Python's `irc` package) against the real server."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import irc.client
import pytest

from tests.conftest import TIMEOUT, RunningServer
from tests.irc_helpers import start_irc


class Bot:
    """An irc.client connection, its events recorded, driven from the test's thread."""

    def __init__(self, port: int, nick: str, password: str, *, sasl: bool) -> None:
        self.reactor = irc.client.Reactor()
        self.events: list[irc.client.Event] = []
        self.reactor.add_global_handler("all_events", self._record, -10)
        self.connection = self.reactor.server().connect(
            "127.0.0.1", port, nick, password=password, sasl_login=nick if sasl else None
        )

    def _record(self, connection: Any, event: irc.client.Event) -> None:
        self.events.append(event)

    def wait_for(self, kind: str, test: Callable[[irc.client.Event], bool] = bool) -> Any:
        deadline = time.monotonic() + TIMEOUT
        seen = 0
        while time.monotonic() < deadline:
            for event in self.events[seen:]:
                if event.type == kind and test(event):
                    return event
            seen = len(self.events)
            self.reactor.process_once(0.02)
        pytest.fail(f"no {kind} event; got {[e.type for e in self.events][-15:]}")

    def close(self) -> None:
        self.connection.close()


@pytest.mark.parametrize("sasl", [True, False], ids=["sasl", "pass"])
def test_an_irc_package_bot_logs_in_joins_and_chats(
    make_server: Callable[..., RunningServer], sasl: bool
) -> None:
    server = start_irc(make_server)
    bot = Bot(server.irc_port, "alice", "pass123", sasl=sasl)
    welcome = bot.wait_for("welcome")
    assert welcome.target == "alice"
    assert bot.connection.features.chantypes == "#"
    bot.wait_for("join", lambda e: e.target == "#general")
    bot.connection.join("#dev")
    bot.wait_for("endofnames", lambda e: e.arguments[0] == "#dev")

    bob = server.line("bob", "qwerty")
    bob.send("/join dev")
    bot.wait_for("join", lambda e: e.target == "#dev" and e.source.nick == "bob")
    bob.send("hello bot")
    message = bot.wait_for("pubmsg", lambda e: e.target == "#dev")
    assert (message.source.nick, message.arguments) == ("bob", ["hello bot"])

    bot.connection.privmsg("#dev", "hello bob")
    bob.expect(r"^alice: hello bob$")
    bot.connection.privmsg("bob", "in private")
    bob.expect(r"^\[private\] alice: in private$")
    bob.send("/msg alice and back")
    private = bot.wait_for("privmsg")
    assert private.arguments == ["and back"]
    bot.connection.topic("#dev", "bots welcome")
    bob.expect(r"alice set the topic of #dev: bots welcome")
    bot.connection.part("#dev")
    bob.expect(r"alice left #dev")
    bot.connection.quit("done")
    bob.expect(r"alice left \(done\)")
    bot.close()


def test_an_irc_package_bot_with_a_wrong_password_is_told(
    make_server: Callable[..., RunningServer],
) -> None:
    server = start_irc(make_server)
    bot = Bot(server.irc_port, "alice", "wrong", sasl=True)
    failed = bot.wait_for("login_failed")
    assert failed.type == "login_failed"  # irc.client got the 904 and gave up on SASL
    bot.close()
