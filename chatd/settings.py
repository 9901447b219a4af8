"""Every option and limit of the server, with its default and the reason for it.

`chatd serve` builds its flags from this one dataclass (`--max-line-bytes`,
`CHATD_MAX_LINE_BYTES`, ...), and the README's settings table lists the same
fields, so the code, the CLI and the documentation cannot drift apart.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, get_type_hints

from chatd.proxy import parse_networks


class ConfigError(ValueError):
    """A setting has a value the server cannot work with."""


def _setting(default: Any, why: str, *, minimum: float | None = None) -> Any:
    return field(default=default, metadata={"help": why, "minimum": minimum})


def available_cpus() -> int:
    """CPUs this process may run on (respects taskset/cgroup pinning)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@dataclass(frozen=True, slots=True)
class Settings:
    """Options and limits of one chatd server."""

    # --- where and what ---------------------------------------------------
    host: str = _setting("0.0.0.0", "interface to listen on (0.0.0.0: every IPv4 interface)")  # noqa: S104
    port: int = _setting(1024, "TCP port to listen on (0 picks a free one)", minimum=0)
    db: str = _setting("chat.db", "SQLite database file (created if missing) or postgresql:// URL")
    users_file: Path = _setting(
        Path("users.txt"), "accounts imported on start (new ones only); may be missing"
    )
    tls_cert: Path | None = _setting(None, "PEM certificate: serve TLS instead of plain TCP")
    tls_key: Path | None = _setting(None, "PEM private key for --tls-cert")
    irc_port: int | None = _setting(
        None, "TCP port of the IRC listener (none: no IRC; 0 picks a free one; 6667 is usual)"
    )
    irc_tls_port: int | None = _setting(
        None, "TCP port of IRC over TLS, with --tls-cert and --tls-key (none: off; 6697 is usual)"
    )
    irc_server_name: str | None = _setting(
        None, "the name the IRC listener gives itself (none: this machine's host name)"
    )
    log_level: str = _setting("INFO", "DEBUG, INFO, WARNING or ERROR, written to stderr")
    bcrypt_rounds: int = _setting(
        12, "bcrypt cost of new hashes; older hashes are upgraded at login", minimum=4
    )

    # --- input limits -----------------------------------------------------
    max_line_bytes: int = _setting(
        2048, "longest line a client may send; also bounds each read buffer", minimum=64
    )
    rate_burst: int = _setting(
        20, "lines a client may send at once before the rate limit applies", minimum=1
    )
    rate_per_second: float = _setting(
        5.0, "lines per second a client may send sustained (0 turns rate limiting off)", minimum=0
    )
    rate_strikes: int = _setting(
        10, "lines refused for flooding before the client is disconnected", minimum=1
    )

    # --- output -----------------------------------------------------------
    sendq_bytes: int = _setting(
        256 * 1024,
        "bytes queued for a client that is not reading before it is cut off (SendQ exceeded)",
        minimum=4096,
    )
    quiet_joins_above: int = _setting(
        50, "join/leave notices are not broadcast while more users than this are online", minimum=0
    )
    history_default: int = _setting(20, "entries /history shows without a number", minimum=1)
    history_max: int = _setting(500, "most entries one /history may ask for", minimum=1)

    # --- logins and connections --------------------------------------------
    login_deadline_s: float = _setting(
        60.0, "seconds a connection may take to log in before it is closed", minimum=1
    )
    login_attempts: int = _setting(
        3, "failed logins on one connection before it is closed", minimum=1
    )
    max_connections: int = _setting(
        1000, "open connections in total; more are refused with a reason", minimum=1
    )
    max_per_address: int = _setting(
        50, "open connections from one IP address (a classroom behind NAT shares one)", minimum=1
    )
    silent_deadline_s: float = _setting(
        20.0,
        "seconds a new connection may stay silent (no username) before it is closed",
        minimum=1,
    )
    throttle_account_after: int = _setting(
        5,
        "failed logins on one name before each further try waits 1, 2, 4.. s, then is refused",
        minimum=1,
    )
    throttle_address_after: int = _setting(
        20, "the same from one IP address (higher: a class behind NAT shares one)", minimum=1
    )
    throttle_max_delay_s: float = _setting(
        30.0, "the longest such wait: a try that would wait longer is refused at once", minimum=0
    )
    throttle_forget_s: float = _setting(
        600.0, "seconds after its last failure that a name or address is forgiven", minimum=1
    )
    tls_handshake_s: float = _setting(
        10.0,
        "seconds a TLS client has to finish its handshake (done off the accept path)",
        minimum=1,
    )
    proxy_protocol_from: str | None = _setting(
        None,
        "load balancers (addresses or networks, comma-separated) whose connections start"
        " with a PROXY v1/v2 header; limits and logs then see the client behind them",
    )
    bcrypt_workers: int = _setting(
        0,
        "password checks run at once, so a login storm cannot starve chat"
        " (0: one per CPU, plus one where there are several)",
        minimum=0,
    )

    shutdown_grace_s: float = _setting(
        5.0, "seconds sessions get at shutdown to finish the line they are on", minimum=0
    )

    # --- rooms and storage --------------------------------------------------
    replay_max: int = _setting(
        20,
        "messages shown per room when catching up at login or joining a room (0: none)",
        minimum=0,
    )
    max_topic_chars: int = _setting(300, "longest room topic /topic accepts", minimum=1)
    retention_days: int = _setting(
        0,
        "delete messages older than this many days, at start and every hour (0: keep all)",
        minimum=0,
    )
    commit_batch: int = _setting(
        1024, "most messages committed in one transaction (group commit)", minimum=1
    )

    def checked(self) -> Settings:
        """Return these settings if every value is usable, else raise ConfigError."""
        for f in fields(self):
            minimum = f.metadata.get("minimum")
            value = getattr(self, f.name)
            if minimum is not None and value < minimum:
                raise ConfigError(f"--{flag_name(f.name)} must be at least {minimum:g}")
        for name in ("port", "irc_port", "irc_tls_port"):
            port = getattr(self, name)
            if port is not None and port > 65535:
                raise ConfigError(f"--{flag_name(name)} must be at most 65535")
            if port is not None and port < 0:
                raise ConfigError(f"--{flag_name(name)} must be at least 0")
        if self.irc_tls_port is not None and self.tls_cert is None:
            raise ConfigError("--irc-tls-port needs --tls-cert and --tls-key")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError("--tls-cert and --tls-key go together")
        if self.log_level.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ConfigError("--log-level must be DEBUG, INFO, WARNING or ERROR")
        if self.proxy_protocol_from:
            try:
                parse_networks(self.proxy_protocol_from)
            except ValueError as exc:
                raise ConfigError(f"--proxy-protocol-from: {exc}") from None
        return self

    @property
    def hash_workers(self) -> int:
        """How many bcrypt checks may run at once.

        bcrypt releases the GIL while it hashes, but each check needs it back to
        hand its result over; on several CPUs one worker more than there are
        CPUs keeps them all busy meanwhile (10,000 logins at cost 4 on 2 CPUs:
        9.5 s instead of 10.5 s). On one CPU the extra worker only competes
        with the chat (p99 6 ms -> 11 ms during a storm at cost 12).
        """
        if self.bcrypt_workers:
            return self.bcrypt_workers
        cpus = available_cpus()
        return cpus + 1 if cpus > 1 else 1


def flag_name(field_name: str) -> str:
    return field_name.replace("_", "-")


def env_name(field_name: str) -> str:
    return "CHATD_" + field_name.upper()


@dataclass(frozen=True)
class SettingInfo:
    """What the CLI and the README need to know about one setting."""

    name: str
    flag: str
    env: str
    default: Any
    type: Any
    help: str


def describe_settings() -> list[SettingInfo]:
    """Every setting, in declaration order."""
    hints = get_type_hints(Settings)
    return [
        SettingInfo(
            name=f.name,
            flag="--" + flag_name(f.name),
            env=env_name(f.name),
            default=f.default,
            type=hints[f.name],
            help=f.metadata["help"],
        )
        for f in fields(Settings)
    ]
