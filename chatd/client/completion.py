"""Tab completion for the interactive prompt: command names, and room names where one fits.

`/jo<Tab>` gives `/join `; after `/join `, `/leave `, `/who ` and
`/history `, and in any word starting with `#`, Tab gives a room the
client has heard of. A room is completed the way it is being typed: `de`
gives `dev`, `#de` gives `#dev` (the server takes either).
"""

from __future__ import annotations

from collections.abc import Iterator

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document

from chatd.client.names import KnownNames

ROOM_COMMANDS = frozenset({"/join", "/leave", "/who", "/history"})  # their first word is a room


class ChatCompleter(Completer):
    """Completes from what `names` has learned, read afresh at every Tab."""

    def __init__(self, names: KnownNames) -> None:
        self.names = names

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterator[Completion]:
        before = document.text_before_cursor
        words = before.split(" ")
        word = words[-1]
        if len(words) == 1 and word.startswith("/"):
            yield from self._commands(word)
        elif word.startswith("#") or (len(words) == 2 and words[0].lower() in ROOM_COMMANDS):
            yield from self._rooms(word)

    def _commands(self, typed: str) -> Iterator[Completion]:
        for name in sorted(self.names.commands):
            if name.startswith(typed.lower()):
                yield Completion(name + " ", start_position=-len(typed), display=name)

    def _rooms(self, typed: str) -> Iterator[Completion]:
        hash_typed = typed.startswith("#")
        wanted = typed.lower().removeprefix("#")
        for room in sorted(self.names.rooms):
            if room[1:].startswith(wanted):
                text = room if hash_typed else room[1:]
                yield Completion(text, start_position=-len(typed), display=room)
