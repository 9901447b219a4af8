"""The wire format: bytes in, clean text lines out, and back. Pure functions, no sockets.

chatd speaks UTF-8 text, one message per line. Clients may end lines with
"\\n" or "\\r\\n"; the server always sends "\\r\\n". Three things can go wrong
with what a client sends, and each becomes a value the session can answer:

* a line longer than the limit (`LINE_TOO_LONG`): the reader never holds more
  than the limit, however much arrives without a newline;
* bytes that are not UTF-8 (`INVALID_UTF8`);
* control characters and terminal escape sequences: removed by `sanitise`,
  so nothing a user types can move another user's cursor, change their
  terminal's title or ring its bell.
"""

from __future__ import annotations

import enum
import re


class FrameError(enum.Enum):
    """A line the framer could not turn into text."""

    LINE_TOO_LONG = "line too long"
    INVALID_UTF8 = "invalid UTF-8"


LINE_TOO_LONG = FrameError.LINE_TOO_LONG
INVALID_UTF8 = FrameError.INVALID_UTF8

Frame = str | FrameError


class LineFramer:
    """Splits a byte stream into decoded, non-empty lines, buffering at most `max_line_bytes`.

    An over-long line is reported once, as soon as it passes the limit, and
    the rest of it is dropped up to its newline.
    """

    __slots__ = ("_discarding", "_partial", "max_line_bytes")

    def __init__(self, max_line_bytes: int) -> None:
        self.max_line_bytes = max_line_bytes
        self._partial = b""
        self._discarding = False  # inside an over-long line, waiting for its end

    def feed(self, data: bytes) -> list[Frame]:
        """Take the next bytes received; return the lines they complete."""
        *complete, tail = data.split(b"\n")
        frames: list[Frame] = []
        for piece in complete:
            if self._discarding:
                self._discarding = False  # the over-long line ends here
                continue
            line = (self._partial + piece if self._partial else piece).removesuffix(b"\r")
            self._partial = b""
            if line:  # empty lines are ignored
                frames.append(self._decode(line))
        if not self._discarding:
            if len(self._partial) + len(tail.removesuffix(b"\r")) > self.max_line_bytes:
                self._partial = b""
                self._discarding = True
                frames.append(LINE_TOO_LONG)
            elif tail:
                self._partial += tail
        return frames

    @property
    def buffered(self) -> int:
        """Bytes held for the unfinished line."""
        return len(self._partial)

    def _decode(self, raw: bytes) -> Frame:
        if len(raw) > self.max_line_bytes:
            return LINE_TOO_LONG
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return INVALID_UTF8


# ESC-introduced sequences (ECMA-48): CSI, OSC and the string commands, then
# any other two- or three-byte escape; and their one-character C1 forms.
_ESCAPE_SEQUENCE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]?"  # CSI: cursor movement, colours, erasing
    r"|\x1b\][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"  # OSC: window title, hyperlinks
    r"|\x1b[PX^_][^\x1b\x9c]*(?:\x1b\\|\x9c)?"  # DCS, SOS, PM, APC strings
    r"|\x1b[ -/]*[0-~]?"  # any other escape
    r"|\x9b[0-?]*[ -/]*[@-~]?"  # C1 CSI
    r"|[\x9d\x90\x98\x9e\x9f][^\x07\x1b\x9c]*(?:\x07|\x9c)?"  # C1 OSC and strings
)
# What is left after the sequences: C0 controls, DEL and C1 controls.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def sanitise(text: str) -> str:
    """Remove escape sequences and control characters; tabs become spaces."""
    if text.isprintable():  # the common case: nothing to do
        return text
    text = _ESCAPE_SEQUENCE.sub("", text.replace("\t", " "))
    return _CONTROL.sub("", text)


def make_visible(text: str) -> str:
    """Show control characters as escapes (\\x1b) instead of removing them: for exports."""
    if text.isprintable():
        return text
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def encode_line(text: str) -> bytes:
    """One line as the server sends it."""
    return (text + "\r\n").encode("utf-8")
