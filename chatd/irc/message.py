"""IRC's wire format: framing, parsing and serialising messages. Pure functions, no sockets.

A message is, per the IRCv3 message-format rules (modern.ircdocs.horse):

    [@tags SPACE] [:source SPACE] command [params...] [SPACE :trailing] CRLF

* tags: `key[=value]` pairs separated by `;`, values escaped (`\\:` for `;`,
  `\\s` for a space, `\\\\`, `\\r`, `\\n`; any other escaped character stands for
  itself and a lone trailing backslash is dropped); the last of duplicate
  keys wins;
* parts are separated by one or more spaces (RFC 1459, not 2812's exactly
  one: what real clients and the ircdocs parser tests expect); tabs are not
  spaces;
* the trailing parameter, after ` :`, may contain spaces or be empty.

Lengths (IRCv3): the tag part may take up to 8,191 bytes (its `@` and the
space after it included), the rest 512 with its CRLF. `IrcFramer` bounds
each part while framing, so a client can never make the server buffer more.

No library is used: the rules are short, the parser tests are public, and
the hot path (one PRIVMSG rendered for a thousand recipients) wants a
preformatted bytes line, not a message object per recipient.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chatd.wire import LINE_TOO_LONG, Frame, LineFramer

MAX_TAGS_BYTES = 8191  # "@" + tags + " "
MAX_BODY_BYTES = 512  # source, command and parameters, CRLF included


class MessageError(ValueError):
    """A line that is not an IRC message (empty, or tags and nothing else)."""


@dataclass(frozen=True, slots=True)
class Message:
    command: str  # as sent: commands are case-insensitive, numerics are digits
    params: list[str] = field(default_factory=list)
    source: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


# --- tags -------------------------------------------------------------------------

_UNESCAPES = {":": ";", "s": " ", "\\": "\\", "r": "\r", "n": "\n"}
_ESCAPES = str.maketrans({";": "\\:", " ": "\\s", "\\": "\\\\", "\r": "\\r", "\n": "\\n"})


def unescape_tag_value(value: str) -> str:
    """A tag value as sent, unescaped one character at a time (so `\\\\n` is `\\` `n`)."""
    if "\\" not in value:
        return value
    out = []
    chars = iter(value)
    for char in chars:
        if char != "\\":
            out.append(char)
            continue
        escaped = next(chars, "")  # a lone backslash at the end is dropped
        out.append(_UNESCAPES.get(escaped, escaped))
    return "".join(out)


def escape_tag_value(value: str) -> str:
    return value.translate(_ESCAPES)


def parse_tags(text: str) -> dict[str, str]:
    """`a=b;c;d=e\\sf` -> {"a": "b", "c": "", "d": "e f"}; the last duplicate wins."""
    tags: dict[str, str] = {}
    for item in text.split(";"):
        if not item:
            continue
        key, _, value = item.partition("=")
        if key:
            tags[key] = unescape_tag_value(value)
    return tags


def format_tags(tags: dict[str, str]) -> str:
    """The tag part of a line, with its `@` and trailing space ("" for no tags)."""
    if not tags:
        return ""
    items = (f"{key}={escape_tag_value(value)}" if value else key for key, value in tags.items())
    return "@" + ";".join(items) + " "


# --- messages -----------------------------------------------------------------------


def parse(line: str) -> Message:
    """One line (without its CRLF) as a Message; MessageError if it has no command."""
    tags: dict[str, str] = {}
    rest = line
    if rest.startswith("@"):
        tag_text, _, rest = rest[1:].partition(" ")
        tags = parse_tags(tag_text)
    rest = rest.lstrip(" ")
    source = None
    if rest.startswith(":"):
        source, _, rest = rest[1:].partition(" ")
        rest = rest.lstrip(" ")
    rest, found, trailing = rest.partition(" :")
    words = [word for word in rest.split(" ") if word]  # tabs are not spaces
    if not words:
        raise MessageError("no command")
    command, *params = words
    if found:
        params.append(trailing)
    return Message(command, params, source, tags)


def needs_colon(param: str) -> bool:
    """Whether a last parameter must be sent as a trailing one (` :...`)."""
    return not param or " " in param or param.startswith(":")


def serialise(message: Message) -> str:
    """A Message as a line, without its CRLF; only the last parameter may need a colon."""
    parts = []
    if message.source:
        parts.append(":" + message.source)
    parts.append(message.command)
    if message.params:
        *middle, last = message.params
        for param in middle:
            if needs_colon(param):
                raise MessageError(f"only the last parameter may be empty or spaced: {param!r}")
        parts += middle
        parts.append(":" + last if needs_colon(last) else last)
    return format_tags(message.tags) + " ".join(parts)


# --- framing ----------------------------------------------------------------------


class IrcFramer(LineFramer):
    """Lines of at most 512 bytes, plus up to 8,191 of tags before them.

    The read buffer is bounded by the sum; each part is then checked on its
    own, so 600 bytes of text with no tags is as much "too long" as 9,000
    bytes of tags.
    """

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__(MAX_TAGS_BYTES + MAX_BODY_BYTES)

    def _decode(self, raw: bytes) -> Frame:
        body = raw
        if raw.startswith(b"@"):
            space = raw.find(b" ")
            tags_length = len(raw) if space < 0 else space + 1
            if tags_length > MAX_TAGS_BYTES:
                return LINE_TOO_LONG
            body = raw[tags_length:]
        if len(body) + 2 > MAX_BODY_BYTES:  # its CRLF counts, whatever the client ended it with
            return LINE_TOO_LONG
        return super()._decode(raw)
