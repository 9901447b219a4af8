"""The wire format's pure functions: framing, decoding, sanitising."""

from __future__ import annotations

from chatd.wire import INVALID_UTF8, LINE_TOO_LONG, LineFramer, make_visible, sanitise


def test_framer_splits_lines_on_lf_and_crlf_across_chunks() -> None:
    framer = LineFramer(100)
    assert framer.feed(b"hel") == []
    assert framer.feed(b"lo\r\nwor") == ["hello"]
    assert framer.feed(b"ld\nlast\r") == ["world"]
    assert framer.feed(b"\n") == ["last"]


def test_framer_ignores_empty_lines() -> None:
    assert LineFramer(100).feed(b"\n\r\n\nhi\n\n") == ["hi"]


def test_framer_reports_an_over_long_line_once_and_drops_the_rest_of_it() -> None:
    framer = LineFramer(10)
    assert framer.feed(b"x" * 8) == []
    assert framer.feed(b"x" * 8) == [LINE_TOO_LONG]
    for _ in range(100):
        assert framer.feed(b"y" * 1000) == []
        assert framer.buffered == 0
    assert framer.feed(b"yyy\nok\n") == ["ok"]


def test_framer_accepts_a_line_of_exactly_the_limit() -> None:
    assert LineFramer(5).feed(b"12345\r\n123456\n") == ["12345", LINE_TOO_LONG]


def test_framer_reports_invalid_utf8_per_line() -> None:
    assert LineFramer(100).feed(b"caf\xc3\xa9\n\xff\xfe\nok\n") == ["café", INVALID_UTF8, "ok"]


def test_sanitise_removes_escape_sequences_and_controls() -> None:
    assert sanitise("plain text, ünïcödé and emoji 👋") == "plain text, ünïcödé and emoji 👋"
    assert sanitise("\x1b[31mred\x1b[0m") == "red"
    assert sanitise("\x1b]0;pwned title\x07after") == "after"
    assert sanitise("\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\") == "link"
    assert sanitise("bell\x07 back\x08space del\x7f") == "bell backspace del"
    assert sanitise("c1 \x9b2Jcsi \x85nel") == "c1 csi nel"
    assert sanitise("tab\there") == "tab here"
    assert sanitise("\x1b") == ""


def test_make_visible_shows_controls_as_escapes() -> None:
    assert make_visible("ok") == "ok"
    assert make_visible("a\x1b[2Jb") == "a\\x1b[2Jb"
