"""Registration: CAP, AUTHENTICATE (SASL PLAIN), PASS, NICK, USER, then the welcome.

A client logs in with its chatd account, one of two ways:

* SASL PLAIN (`CAP REQ :sasl`, `AUTHENTICATE PLAIN`, then the base64 of
  `\\0account\\0password`), answered with 900/903 or 904; it may be retried
  up to `login_attempts` times;
* `PASS password` with the account's name as nick, or `PASS account:password`
  (when the text before the first colon is an account name), checked once
  NICK and USER have come: a failure is 464, then ERROR and a close.

Either way the nick becomes the account's name. Then come 001-005, the
MOTD, a JOIN for each of the account's rooms and what was said meanwhile.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import TYPE_CHECKING

from chatd import __version__
from chatd.accounts import is_valid_username
from chatd.irc import channels
from chatd.irc import numerics as n
from chatd.irc.session import HOST, IrcSession, reply
from chatd.limits import LoginRefusedError

if TYPE_CHECKING:
    from chatd.storage.users import User

# What chatd offers with `CAP LS`; the values are for `CAP LS 302` clients.
CAPABILITIES = {"sasl": "PLAIN", "server-time": "", "echo-message": "", "message-tags": ""}
_SASL_CHUNK = 400  # AUTHENTICATE carries base64 in pieces of 400 (IRCv3 sasl-3.1)
_SASL_MAX = 1200  # an account, a password and two NULs take far less
# A nick IRC can carry: no spaces, commas or the characters of sources and masks.
_NICK = re.compile(r"[^\s,*?!@:#&$+%~.][^\s,*?!@:]{0,31}")


async def cap(session: IrcSession, params: list[str]) -> None:
    sub = params[0].upper()
    target = session.nick or "*"
    if sub == "LS":
        session.cap_negotiating = not session.registered
        v302 = len(params) > 1 and params[1].isdecimal() and int(params[1]) >= 302
        offered = " ".join(
            f"{name}={value}" if value and v302 else name for name, value in CAPABILITIES.items()
        )
        session.conn.send(reply(session.server_name, "CAP", target, "LS", offered))
    elif sub == "LIST":
        session.conn.send(reply(session.server_name, "CAP", target, "LIST", " ".join(session.caps)))
    elif sub == "REQ":
        session.cap_negotiating = not session.registered
        wanted = params[1].split() if len(params) > 1 else []
        if wanted and all(name.removeprefix("-") in CAPABILITIES for name in wanted):
            for name in wanted:
                if name.startswith("-"):
                    session.caps.discard(name[1:])
                else:
                    session.caps.add(name)
            session.server_time = "server-time" in session.caps
            session.echo_message = "echo-message" in session.caps
            answer = "ACK"
        else:
            answer = "NAK"  # all or nothing, as the capability negotiation rules say
        session.conn.send(reply(session.server_name, "CAP", target, answer, " ".join(wanted)))
    elif sub == "END":
        session.cap_negotiating = False
    else:
        session.numeric(n.ERR_INVALIDCAPCMD, sub[:20], "Invalid CAP command")


async def authenticate(session: IrcSession, params: list[str]) -> None:
    payload = _sasl_payload(session, params[0])
    if payload is None:
        return
    try:
        authzid, account, secret = base64.b64decode(payload, validate=True).decode().split("\0")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        authzid, account, secret = "", "", ""
    user = None
    if account and authzid in ("", account):
        user = await _check(session, account, secret, n.ERR_SASLFAIL)
    if user is None:
        _failed(session, n.ERR_SASLFAIL, "SASL authentication failed")
        return
    session.user = user
    name = user.username
    session.numeric(
        n.RPL_LOGGEDIN, f"{name}!{name}@{HOST}", name, f"You are now logged in as {name}"
    )
    session.numeric(n.RPL_SASLSUCCESS, "SASL authentication successful")


def _sasl_payload(session: IrcSession, data: str) -> str | None:
    """Take one AUTHENTICATE; the whole base64 payload once the last piece has come."""
    if session.user is not None:
        session.numeric(n.ERR_SASLALREADY, "You have already authenticated using SASL")
        return None
    if data == "*":
        session.sasl_buffer = None
        session.numeric(n.ERR_SASLABORTED, "SASL authentication aborted")
        return None
    if session.sasl_buffer is None:  # the client names its mechanism first
        if data.upper() == "PLAIN":
            session.sasl_buffer = ""
            session.conn.send("AUTHENTICATE +")
        else:
            session.numeric(n.RPL_SASLMECHS, "PLAIN", "are available SASL mechanisms")
            session.numeric(n.ERR_SASLFAIL, "SASL authentication failed")
        return None
    if len(data) > _SASL_CHUNK or len(session.sasl_buffer) + len(data) > _SASL_MAX:
        session.sasl_buffer = None
        session.numeric(n.ERR_SASLTOOLONG, "SASL message too long")
        return None
    if data != "+":  # "+" alone: an empty piece, or the end of a multiple of 400
        session.sasl_buffer += data
    if len(data) == _SASL_CHUNK:
        return None  # more to come
    payload, session.sasl_buffer = session.sasl_buffer, None
    return payload


async def password(session: IrcSession, params: list[str]) -> None:
    if session.registered:
        session.numeric(n.ERR_ALREADYREGISTERED, "You may not reregister")
        return
    session.password = params[0]


async def nick(session: IrcSession, params: list[str]) -> None:
    wanted = params[0]
    if not session.registered:
        if _NICK.fullmatch(wanted) is None:
            session.numeric(n.ERR_ERRONEUSNICKNAME, wanted[:40], "Erroneous nickname")
        else:
            session.nick = wanted
        return
    if wanted.lower() != session.name.lower():
        session.numeric(
            n.ERR_RESTRICTED, f"Your nick is your account name ({session.name}); it cannot change"
        )


async def user(session: IrcSession, params: list[str]) -> None:
    if session.registered:
        session.numeric(n.ERR_ALREADYREGISTERED, "You may not reregister")
        return
    session.got_user = True


async def log_in(session: IrcSession) -> User:
    """The account, once NICK and USER have come: from SASL, or checked from PASS now."""
    if session.user is not None:
        return session.user
    if session.password is None:
        session.numeric(
            n.ERR_PASSWDMISMATCH,
            "Password required: log in with SASL PLAIN, or PASS with your account's password",
        )
        raise session.end("Password required")
    account, colon, rest = session.password.partition(":")
    if colon and is_valid_username(account):
        username, secret = account, rest  # PASS account:password
    else:
        username, secret = session.nick, session.password  # PASS password, nick = account
    found = await _check(session, username, secret, n.ERR_PASSWDMISMATCH)
    if found is None:
        session.numeric(n.ERR_PASSWDMISMATCH, "Password incorrect")
        raise session.end("Bad password")
    return found


async def _check(session: IrcSession, username: str, secret: str, numeric: str) -> User | None:
    """Check a login with the service (bcrypt, throttled); a refused one ends the session."""
    conn = session.conn
    try:
        # Waiting for its turn at bcrypt is not the client being slow.
        with conn.checking_login():
            return await session.service.authenticate(username, secret, conn.address, conn.peer)
    except LoginRefusedError:
        session.numeric(numeric, "Too many failed logins; try again later")
        raise session.end("Too many failed logins") from None


def _failed(session: IrcSession, numeric: str, text: str) -> None:
    session.numeric(numeric, text)
    session.failed_logins += 1
    if session.failed_logins >= session.settings.login_attempts:
        raise session.end("Too many failed logins")


# --- the welcome ----------------------------------------------------------------------


async def welcome(session: IrcSession) -> None:
    """Put the session online and greet it: 001-005, the MOTD, its rooms, what it missed.

    Live messages wait until all that is sent, as with the line protocol: they
    come after the JOINs of the channels they are said in.
    """
    assert session.user is not None
    session.conn.hold_output()
    replays = await session.service.enter(session, session.user, structured=True)
    session.registered = True
    lines = greeting(session)
    for state in session.service.hub.rooms_of(session):
        lines += channels.join_lines(session, state.name)
    lines += channels.catch_up_lines(session, replays)
    session.conn.release_output(lines)


def isupport(session: IrcSession) -> list[str]:
    """What this server supports, as RPL_ISUPPORT tokens (honest ones: see README)."""
    settings = session.settings
    return [
        "CASEMAPPING=ascii",
        "CHANTYPES=#",
        "CHANLIMIT=#:",
        "CHANMODES=,,,nt",
        "CHANNELLEN=33",
        "NICKLEN=32",
        f"TOPICLEN={settings.max_topic_chars}",
        "LINELEN=512",
        "MAXTARGETS=4",
        "TARGMAX=PRIVMSG:4,NOTICE:4,JOIN:,PART:,NAMES:,WHOIS:1",
        "NETWORK=chatd",
        "UTF8ONLY",
    ]


MOTD = [
    "Welcome to chatd. Your nick is your account's name; rooms are channels.",
    "JOIN #room joins a room (creating it if new), PART leaves it; #general stays.",
    "What you say is stored first, then delivered; catching up comes as PRIVMSGs.",
]


def greeting(session: IrcSession) -> list[str]:
    name, server = session.name, session.server_name
    version = f"chatd-{__version__}"
    line = session.numeric_line
    tokens = isupport(session)
    return [
        line(n.RPL_WELCOME, f"Welcome to chatd, {name}"),
        line(n.RPL_YOURHOST, f"Your host is {server}, running version {version}"),
        line(n.RPL_CREATED, f"This server was started {session.frontend.started}"),
        line(n.RPL_MYINFO, server, version, "i", "nt"),
        line(n.RPL_ISUPPORT, *tokens, "are supported by this server"),
        line(n.RPL_MOTDSTART, f"- {server} Message of the day -"),
        *(line(n.RPL_MOTD, f"- {text}") for text in MOTD),
        line(n.RPL_ENDOFMOTD, "End of /MOTD command."),
    ]
