"""Property-based tests of the wire functions, and random bytes against the live server."""

from __future__ import annotations

import itertools
import random
import socket
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from chatd.storage import open_database
from chatd.wire import INVALID_UTF8, LINE_TOO_LONG, LineFramer, make_visible, sanitise
from tests.conftest import TIMEOUT, RunningServer

LIMIT = 64
_lines = st.lists(
    st.text(alphabet=st.characters(codec="utf-8", blacklist_characters="\r\n"), max_size=40)
)


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


@given(lines=_lines, cuts=st.lists(st.integers(min_value=0), max_size=20), crlf=st.booleans())
def test_framing_does_not_depend_on_how_bytes_are_split(
    lines: list[str], cuts: list[int], crlf: bool
) -> None:
    data = "".join(line + ("\r\n" if crlf else "\n") for line in lines).encode()
    framer = LineFramer(LIMIT)
    frames = [frame for chunk in _chunks(data, cuts) for frame in framer.feed(chunk)]
    expected = [
        line if len(line.encode()) <= LIMIT else LINE_TOO_LONG
        for line in lines
        if line  # empty lines are skipped
    ]
    assert frames == expected


@given(data=st.binary(max_size=2000), cuts=st.lists(st.integers(min_value=0), max_size=30))
def test_framer_never_holds_more_than_the_limit(data: bytes, cuts: list[int]) -> None:
    framer = LineFramer(LIMIT)
    for chunk in _chunks(data, cuts):
        for frame in framer.feed(chunk):
            assert frame in (LINE_TOO_LONG, INVALID_UTF8) or (
                isinstance(frame, str) and 0 < len(frame.encode()) <= LIMIT and "\n" not in frame
            )
        assert framer.buffered <= LIMIT + 1  # a trailing '\r' may wait for its '\n'


@given(raw=st.binary(max_size=200))
def test_decoding_accepts_exactly_utf8(raw: bytes) -> None:
    line = raw.replace(b"\n", b"").removesuffix(b"\r")
    frames = LineFramer(1000).feed(line + b"\n")
    if not line:
        assert frames == []
        return
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        assert frames == [INVALID_UTF8]
    else:
        assert frames == [text]


@given(text=st.text())
def test_sanitised_text_has_no_controls_and_is_stable(text: str) -> None:
    clean = sanitise(text)
    assert not any(ch < " " or "\x7f" <= ch <= "\x9f" for ch in clean)
    assert sanitise(clean) == clean
    assert len(clean) <= len(text)


@given(text=st.text(alphabet=st.characters(blacklist_categories=("Cc",))))
def test_sanitise_keeps_text_without_controls(text: str) -> None:
    assert sanitise(text) == text


@given(text=st.text())
def test_make_visible_shows_every_control(text: str) -> None:
    shown = make_visible(text)
    assert not any(ch < " " or "\x7f" <= ch <= "\x9f" for ch in shown)


_NASTY = [
    b"\n",
    b"\r\n",
    b"\x1b[",
    b"\x1b]0;",
    b"\x07",
    b"\xff",
    b"\xc3",
    b"\x00",
    b"/",
    b"/msg ",
    b"/history ",
    b"/passwd\n",
    b"alice\n",
    b"pass123\n",
    "é".encode(),
    b"\x9b",
    b" ",
]


def test_random_byte_streams_leave_the_server_answering(make_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # The fuzzing clients guess passwords too: keep the login throttle out of the way.
    server: RunningServer = make_server(throttle_account_after=1000, throttle_address_after=1000)
    generator = random.Random(1234)  # fixed seed: a failure can be replayed
    for round_number in range(60):
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)
        if round_number % 2:  # half of them log in first, to fuzz the chat state too
            sock.sendall(b"carol\ncarol-pw\n")
        for _ in range(generator.randint(1, 30)):
            if generator.random() < 0.5:
                piece = generator.choice(_NASTY)
            else:
                piece = generator.randbytes(generator.randint(1, 300))
            try:
                sock.sendall(piece)
            except OSError:
                break
        sock.close()
    alice = server.login("alice", "pass123")
    bob = server.login("bob", "qwerty")
    alice.send("still standing?")
    bob.expect("^alice: still standing\\?$")
    conn = open_database(tmp_path / "chat.db")
    bodies = [row[0] for row in conn.execute("SELECT body FROM messages")]
    assert not any(ch < " " or "\x7f" <= ch <= "\x9f" for body in bodies for ch in body)
