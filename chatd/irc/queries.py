"""Who is who: WHO, WHOIS, WHOWAS, ISON and USERHOST, answered from the hub (who is online).

Every user, whichever protocol they came by and whichever node they are on,
looks the same here: nick, user name and account are the account's name, the
host is `chatd`. An away message set on another node is known here from that
node's session row, as of this node's last reading (within a beat).
"""

from __future__ import annotations

from chatd.irc import numerics as n
from chatd.irc.channels import channel_name
from chatd.irc.messaging import away_message
from chatd.irc.session import HOST, IrcSession


def _online_name(session: IrcSession, nick: str) -> str | None:
    """The account name of a user online under `nick` (any case), if there is one."""
    return session.service.hub.online_name(nick)


async def who(session: IrcSession, params: list[str]) -> None:
    mask = params[0] if params else "*"
    channel = "*"
    names: list[str] = []
    if mask.startswith("#"):
        name = channel_name(session, mask)
        state = None if name is None else session.service.hub.room(name)
        if state is not None:
            channel, names = state.name, state.online_names()
    else:
        found = _online_name(session, mask)
        names = [found] if found else []
    lines = []
    for name in names:
        here = "G" if away_message(session, name) else "H"
        lines.append(
            session.numeric_line(
                n.RPL_WHOREPLY, channel, name, HOST, session.server_name, name, here, f"0 {name}"
            )
        )
    lines.append(session.numeric_line(n.RPL_ENDOFWHO, mask[:40], "End of /WHO list."))
    session.conn.send_lines(lines)


async def whois(session: IrcSession, params: list[str]) -> None:
    nick = params[-1]  # WHOIS [server] nick
    hub = session.service.hub
    name = hub.online_name(nick)  # online here or on another node
    if name is None:
        session.numeric(n.ERR_NOSUCHNICK, nick[:40], "No such nick/channel")
        session.numeric(n.RPL_ENDOFWHOIS, nick[:40], "End of /WHOIS list.")
        return
    rooms = " ".join(state.name for state in hub.rooms_of_user(name))
    lines = [
        session.numeric_line(n.RPL_WHOISUSER, name, name, HOST, "*", name),
        session.numeric_line(n.RPL_WHOISCHANNELS, name, rooms),
        session.numeric_line(n.RPL_WHOISSERVER, name, session.server_name, "chatd"),
    ]
    away = away_message(session, name)
    if away:
        lines.append(session.numeric_line(n.RPL_AWAY, name, away))
    lines += [
        session.numeric_line(n.RPL_WHOISACCOUNT, name, name, "is logged in as"),
        session.numeric_line(n.RPL_ENDOFWHOIS, name, "End of /WHOIS list."),
    ]
    session.conn.send_lines(lines)


async def whowas(session: IrcSession, params: list[str]) -> None:
    """Nobody's past nicks are kept (clients ask after a WHOIS of someone gone)."""
    nick = params[0][:40]
    session.numeric(n.ERR_WASNOSUCHNICK, nick, "There was no such nickname")
    session.numeric(n.RPL_ENDOFWHOWAS, nick, "End of WHOWAS")


async def ison(session: IrcSession, params: list[str]) -> None:
    online = [_online_name(session, nick) for nick in " ".join(params).split()[:50]]
    session.numeric(n.RPL_ISON, " ".join(name for name in online if name))


async def userhost(session: IrcSession, params: list[str]) -> None:
    found = []
    for nick in params[:5]:
        name = _online_name(session, nick)
        if name:
            found.append(f"{name}={'-' if away_message(session, name) else '+'}{name}@{HOST}")
    session.numeric(n.RPL_USERHOST, " ".join(found))
