"""The lines the server sends. Those marked exact are relied on by clients and scripts.

Kinds of line a client can tell apart by their start:
  "You said: ..."             your own message, stored and sent       (exact)
  "NAME: ..."                 someone else's message
  "[private] ..."             a private message, to or from you
  "*** ..."                   a notice: joins, leaves, announcements, shutdown
  "Error: ..."                something you sent was refused
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
