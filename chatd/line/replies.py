"""The lines the server sends. Those marked exact are relied on by clients and scripts.

Kinds of line a client can tell apart by their start:
  "You said: ..."             your own message, stored and sent       (exact)
  "NAME: ..."                 someone else's message, in your current room
  "[#room] NAME: ..."         someone else's message in another room  (exact form)
  "[private] ..."             a private message, to or from you
  "*** ..."                   a notice: joins, leaves, announcements, shutdown
  "Error: ..."                something you sent was refused
  "Now talking in #room."     your current room changed              (exact start)
  anything else               an answer to a command (/help, /users, /history)
"""

from __future__ import annotations

GREETING = "Welcome to chatd. Please log in."
ASK_USERNAME = "Username:"  # exact start
ASK_PASSWORD = "Password:"  # exact start
LOGIN_FAILED = "Login failed. Try again."  # exact start "Login failed"
LOGIN_FAILED_LAST = "Login failed. Too many attempts; disconnecting."
LOGIN_REFUSED = "Login failed. Too many failed logins; try again later."
LOGIN_TOO_SLOW = "Error: login took too long; disconnecting."
DISCONNECTED = "Disconnected from server."  # exact, the answer to /quit
SHUTTING_DOWN = "*** The server is shutting down. Goodbye."
NOT_SAVED = "Error: your message could not be saved; please send it again."
# The database failed or could not be reached (PostgreSQL restarting, say): the
# session stays.
UNAVAILABLE = "Error: the database is unavailable; that was not done. Please try again."
# ... while logging in (or being let in): the session ends.
LOGIN_UNAVAILABLE = "Login failed. The database is unavailable; try again later."

ASK_CURRENT_PASSWORD = "Current password:"
ASK_NEW_PASSWORD = "New password:"
ASK_NEW_PASSWORD_AGAIN = "Repeat the new password:"

ERROR_PREFIX = "Error: "
NOTICE_PREFIX = "*** "
PRIVATE_PREFIX = "[private] "


def welcome(name: str, online: int) -> str:
    others = online - 1
    if others == 0:
        company = "Nobody else is"
    elif others == 1:
        company = "1 other user is"
    else:
        company = f"{others} other users are"
    return f"Welcome, {name}! {company} online. Type /help for the commands."  # exact start


def you_said(text: str) -> str:
    return f"You said: {text}"


def public(sender: str, text: str) -> str:
    return f"{sender}: {text}"


def private_from(sender: str, text: str) -> str:
    return f"{PRIVATE_PREFIX}{sender}: {text}"


def private_sent(recipient: str, text: str) -> str:
    return f"{PRIVATE_PREFIX}You said to {recipient}: {text}"


def announcement(sender: str, text: str) -> str:
    return f"{NOTICE_PREFIX}Announcement from {sender}: {text}"


def notice(text: str) -> str:
    return f"{NOTICE_PREFIX}{text}"


def error(text: str) -> str:
    return f"{ERROR_PREFIX}{text}"


def active_users(names: list[str]) -> str:
    return "Active users: " + ", ".join(names)  # exact


def in_room(room: str, line: str) -> str:
    """A line from a room other than the reader's current one."""
    return f"[{room}] {line}"  # exact form


def now_talking_in(room: str) -> str:
    return f"Now talking in {room}."  # exact start "Now talking in #room"


def joined(name: str, room: str) -> str:
    """A join notice: a login (in #general) or joining a room."""
    return notice(f"{name} joined") if room == "#general" else notice(f"{name} joined {room}")


def left(name: str, room: str, how: str) -> str:
    """A leave notice: a logout (`how` says why) or leaving a room."""
    return (
        notice(f"{name} {how or 'left'}") if room == "#general" else notice(f"{name} left {room}")
    )


def topic_set(name: str, room: str, topic: str) -> str:
    if not topic:
        return notice(f"{name} cleared the topic of {room}")
    return notice(f"{name} set the topic of {room}: {topic}")


def online_in(room: str, names: list[str]) -> str:
    return f"Online in {room}: " + ", ".join(names)  # exact


def replay_header(room: str | None, total: int, shown: int, *, first_time: bool) -> str:
    """The line before messages shown at once (SPEC §8, catching up)."""
    s = "s" * (total != 1)
    if room is None:
        what = f"{total} private message{s} while you were away"
    elif first_time:
        what = (
            f"The latest {shown} of {total} messages in {room}"
            if shown < total
            else (f"{total} message{s} in {room}")
        )
    else:
        what = f"{total} new message{s} in {room} while you were away"
    if not first_time and shown < total:
        what += f"; the latest {shown}"
    return notice(what + ":")
