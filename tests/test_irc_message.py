"""IRC's message format, against vectors of the ircdocs parser tests (msg-split, msg-join)
written out here as data, and the framing limits of 512 bytes plus 8,191 of tags."""

from __future__ import annotations

import pytest

from chatd.irc.message import (
    IrcFramer,
    Message,
    MessageError,
    escape_tag_value,
    parse,
    serialise,
    unescape_tag_value,
)
from chatd.wire import INVALID_UTF8, LINE_TOO_LONG

# (input, tags, source, verb, params) -- from ircdocs/parser-tests tests/msg-split.yaml
SPLIT = [
    ("foo bar baz asdf", {}, None, "foo", ["bar", "baz", "asdf"]),
    (":coolguy foo bar baz asdf", {}, "coolguy", "foo", ["bar", "baz", "asdf"]),
    ("foo bar baz :asdf quux", {}, None, "foo", ["bar", "baz", "asdf quux"]),
    ("foo bar baz :", {}, None, "foo", ["bar", "baz", ""]),
    ("foo bar baz ::asdf", {}, None, "foo", ["bar", "baz", ":asdf"]),
    (":coolguy foo bar baz :  asdf quux ", {}, "coolguy", "foo", ["bar", "baz", "  asdf quux "]),
    (":coolguy PRIVMSG bar :lol :) ", {}, "coolguy", "PRIVMSG", ["bar", "lol :) "]),
    (":coolguy foo bar baz :  ", {}, "coolguy", "foo", ["bar", "baz", "  "]),
    ("@a=b;c=32;k;rt=ql7 foo", {"a": "b", "c": "32", "k": "", "rt": "ql7"}, None, "foo", []),
    (
        "@a=b\\\\and\\nk;c=72\\s45;d=gh\\:764 foo",
        {"a": "b\\and\nk", "c": "72 45", "d": "gh;764"},
        None,
        "foo",
        [],
    ),
    ("@c;h=;a=b :quux ab cd", {"c": "", "h": "", "a": "b"}, "quux", "ab", ["cd"]),
    (":src JOIN #chan", {}, "src", "JOIN", ["#chan"]),
    (":src JOIN :#chan", {}, "src", "JOIN", ["#chan"]),
    (":src AWAY", {}, "src", "AWAY", []),
    (":src AWAY ", {}, "src", "AWAY", []),
    (":cool\tguy foo bar baz", {}, "cool\tguy", "foo", ["bar", "baz"]),
    (
        ":coolguy!ag@net\x035w\x03ork.admin PRIVMSG foo :bar baz",
        {},
        "coolguy!ag@net\x035w\x03ork.admin",
        "PRIVMSG",
        ["foo", "bar baz"],
    ),
    (
        "@tag1=value1;tag2;vendor1/tag3=value2;vendor2/tag4= :irc.example.com COMMAND param1"
        " param2 :param3 param3",
        {"tag1": "value1", "tag2": "", "vendor1/tag3": "value2", "vendor2/tag4": ""},
        "irc.example.com",
        "COMMAND",
        ["param1", "param2", "param3 param3"],
    ),
    ("COMMAND", {}, None, "COMMAND", []),
    ("@foo=\\\\\\\\\\:\\\\s\\s\\r\\n COMMAND", {"foo": "\\\\;\\s \r\n"}, None, "COMMAND", []),
    (
        ":gravel.mozilla.org 432  #momo :Erroneous Nickname: Illegal characters",
        {},
        "gravel.mozilla.org",
        "432",
        ["#momo", "Erroneous Nickname: Illegal characters"],
    ),
    (":gravel.mozilla.org MODE #tckk +n ", {}, "gravel.mozilla.org", "MODE", ["#tckk", "+n"]),
    (
        ":services.esper.net MODE #foo-bar +o foobar  ",
        {},
        "services.esper.net",
        "MODE",
        ["#foo-bar", "+o", "foobar"],
    ),
    ("@tag1=value\\\\ntest COMMAND", {"tag1": "value\\ntest"}, None, "COMMAND", []),
    ("@tag1=value\\1 COMMAND", {"tag1": "value1"}, None, "COMMAND", []),
    ("@tag1=value1\\ COMMAND", {"tag1": "value1"}, None, "COMMAND", []),
    (
        "@tag1=1;tag2=3;tag3=4;tag1=5 COMMAND",
        {"tag1": "5", "tag2": "3", "tag3": "4"},
        None,
        "COMMAND",
        [],
    ),
    (":SomeOp MODE #channel :+i", {}, "SomeOp", "MODE", ["#channel", "+i"]),
    (
        ":SomeOp MODE #channel +oo SomeUser :AnotherUser",
        {},
        "SomeOp",
        "MODE",
        ["#channel", "+oo", "SomeUser", "AnotherUser"],
    ),
]


@pytest.mark.parametrize(("line", "tags", "source", "verb", "params"), SPLIT)
def test_parser_splits_the_ircdocs_vectors(
    line: str, tags: dict[str, str], source: str | None, verb: str, params: list[str]
) -> None:
    assert parse(line) == Message(verb, params, source, tags)


# (atoms, the lines that match them) -- from tests/msg-join.yaml
JOIN = [
    (Message("foo", ["bar", "baz", "asdf"]), ["foo bar baz asdf", "foo bar baz :asdf"]),
    (Message("AWAY", [], "src"), [":src AWAY"]),
    (Message("AWAY", [""], "src"), [":src AWAY :"]),
    (Message("foo", ["bar", "baz", "asdf quux"]), ["foo bar baz :asdf quux"]),
    (Message("foo", ["bar", "baz", ""]), ["foo bar baz :"]),
    (Message("foo", ["bar", "baz", ":asdf"]), ["foo bar baz ::asdf"]),
    (Message("PRIVMSG", ["bar", "lol :) "], "coolguy"), [":coolguy PRIVMSG bar :lol :) "]),
    (Message("foo", ["b\tar", "baz"], "coolguy"), [":coolguy foo b\tar baz"]),
    (
        Message("foo", ["bar", "baz", "  "], "coolguy", {"asd": ""}),
        ["@asd :coolguy foo bar baz :  "],
    ),
    (
        Message("foo", ["par1", "par2"], tags={"a": "b\\and\nk", "d": "gh;764"}),
        ["@a=b\\\\and\\nk;d=gh\\:764 foo par1 par2", "@d=gh\\:764;a=b\\\\and\\nk foo par1 par2"],
    ),
    (Message("COMMAND", tags={"foo": "\\\\;\\s \r\n"}), ["@foo=\\\\\\\\\\:\\\\s\\s\\r\\n COMMAND"]),
]


@pytest.mark.parametrize(("message", "matches"), JOIN)
def test_serialiser_joins_the_ircdocs_vectors(message: Message, matches: list[str]) -> None:
    line = serialise(message)
    assert line in matches
    assert parse(line) == message


def test_a_middle_parameter_with_a_space_cannot_be_sent() -> None:
    with pytest.raises(MessageError):
        serialise(Message("PRIVMSG", ["two words", "text"]))


@pytest.mark.parametrize("line", ["", "   ", "@a=b", "@a=b   ", ":source", ":source   "])
def test_a_line_without_a_command_is_not_a_message(line: str) -> None:
    with pytest.raises(MessageError):
        parse(line)


def test_tag_escaping_round_trips() -> None:
    value = "a;b c\\d\re\nf"
    assert escape_tag_value(value) == "a\\:b\\sc\\\\d\\re\\nf"
    assert unescape_tag_value(escape_tag_value(value)) == value


def test_the_framer_takes_512_bytes_of_message_and_8191_of_tags() -> None:
    framer = IrcFramer()
    longest = "PRIVMSG #a :" + "x" * (510 - 12)
    assert framer.feed(longest.encode() + b"\r\n") == [longest]
    assert framer.feed(longest.encode() + b"y\r\n") == [LINE_TOO_LONG]
    tags = "@" + "t" * 8189 + " "
    assert framer.feed((tags + longest + "\r\n").encode()) == [tags + longest]
    assert framer.feed(("@t" + tags[1:] + longest + "\r\n").encode()) == [LINE_TOO_LONG]


def test_the_framer_never_buffers_more_than_both_limits() -> None:
    framer = IrcFramer()
    assert framer.feed(b"x" * 10_000) == [LINE_TOO_LONG]
    assert framer.buffered == 0
    assert framer.feed(b"still the same line\nPING :a\n") == ["PING :a"]
    assert framer.feed(b"PRIVMSG #a :\xff\xfe\n") == [INVALID_UTF8]
