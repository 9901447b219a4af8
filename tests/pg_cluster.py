"""A private PostgreSQL 15 cluster for the tests that must restart the database or
log in with a password: the machine's shared server (trust auth) is never touched.

`PrivateCluster` runs initdb in a temporary directory, then `pg_ctl start` on a
free port, listening on 127.0.0.1 only, where every TCP login needs a password
(scram-sha-256, pg_hba.conf) and the Unix socket lives in the directory itself.
As root, initdb and pg_ctl run as the `postgres` system user (PostgreSQL
refuses to run as root), in a directory that user owns.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import quote

BIN = Path(os.environ.get("CHATD_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
SYSTEM_USER = "postgres"  # who runs the server when the tests run as root
SUPERUSER = "postgres"  # the cluster's superuser role
ROLE = "chat"  # the role chatd logs in as: a database's owner, not a superuser

# Tests start and stop the cluster: nothing in it needs to survive a power cut,
# so it skips fsync, and its few connections need little memory.
_SERVER_OPTIONS = (
    "-c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
    " -c shared_buffers=16MB -c max_connections=60 -c max_wal_senders=0"
)
_HBA = """\
# The private test cluster: the Unix socket (in its own 0700 directory) for
# pg_ctl; every TCP login, from 127.0.0.1 only, with a password.
local all all trust
host all all 127.0.0.1/32 scram-sha-256
"""


def unavailable() -> str | None:
    """Why a private cluster cannot run here, or None if it can."""
    for tool in ("initdb", "pg_ctl", "postgres"):
        if not (BIN / tool).is_file():
            return f"no PostgreSQL binaries at {BIN} ({tool} is missing)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SYSTEM_USER)
        except KeyError:
            return f"running as root and there is no {SYSTEM_USER!r} user to run PostgreSQL as"
        if shutil.which("runuser") is None:
            return "running as root and there is no runuser to run PostgreSQL as another user"
    return None


class PrivateCluster:
    """A PostgreSQL cluster of the test run's own: start(), URLs, restart(), destroy()."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.directory = Path(tempfile.mkdtemp(prefix="chatd-pg-"))
        self.data = self.directory / "data"
        self.log = self.directory / "server.log"
        self.superuser_password = "super-" + os.urandom(6).hex()
        self.password = "chat-" + os.urandom(6).hex()  # the role `chat`'s
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            owner = pwd.getpwnam(SYSTEM_USER)
            os.chown(self.directory, owner.pw_uid, owner.pw_gid)
            self._as_user = ["runuser", "-u", SYSTEM_USER, "--"]
        os.chmod(self.directory, 0o700)

    def url(self, database: str = "postgres", *, user: str = ROLE, password: str = "") -> str:
        """A URL to the cluster; the role's own password unless another is given."""
        secret = password or (self.superuser_password if user == SUPERUSER else self.password)
        return f"postgresql://{user}:{quote(secret, safe='')}@127.0.0.1:{self.port}/{database}"

    def create(self) -> None:
        """initdb, then start it and create the role `chat` with its password."""
        password_file = self.directory / "superuser-password"
        password_file.write_text(self.superuser_password + "\n")
        self._chown(password_file)
        self._run(
            BIN / "initdb",
            "--pgdata",
            self.data,
            "--username",
            SUPERUSER,
            "--pwfile",
            password_file,
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        )
        password_file.unlink()
        (self.data / "pg_hba.conf").write_text(_HBA)
        self.start()
        import psycopg

        with psycopg.connect(self.url(user=SUPERUSER), autocommit=True) as admin:
            admin.execute(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{self.password}'")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} {_SERVER_OPTIONS}"
        self._pg_ctl("start", "--wait", "--timeout=30", "-o", options, "-l", self.log)

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: `fast` ends every connection (as a restart does)."""
        self._pg_ctl("stop", "--wait", "--timeout=30", "-m", mode)

    def restart(self) -> None:
        """`pg_ctl restart -m fast`: every connection is cut, the server comes back."""
        options = f"-p {self.port} -k {self.directory} {_SERVER_OPTIONS}"
        self._pg_ctl(
            "restart", "--wait", "--timeout=30", "-m", "fast", "-o", options, "-l", self.log
        )

    def ensure_running(self) -> None:
        """Start the server if it is stopped (a test failed while it was)."""
        if not (self.data / "postmaster.pid").exists():
            self.start()

    def destroy(self) -> None:
        """Stop the server if it runs, and remove every file of the cluster."""
        if (self.data / "postmaster.pid").exists():
            self._pg_ctl("stop", "--wait", "--timeout=30", "-m", "immediate", check=False)
        shutil.rmtree(self.directory, ignore_errors=True)

    def _pg_ctl(self, *args: str | Path, check: bool = True) -> None:
        self._run(BIN / "pg_ctl", "--pgdata", self.data, *args, check=check)

    def _run(self, *command: str | Path, check: bool = True) -> None:
        result = subprocess.run(
            [*self._as_user, *map(str, command)],
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        if check and result.returncode != 0:
            log = self.log.read_text()[-2000:] if self.log.exists() else ""
            raise RuntimeError(
                f"{Path(command[0]).name} failed ({result.returncode}):"
                f" {result.stderr.strip()}\n{log}"
            )

    def _chown(self, path: Path) -> None:
        if self._as_user:
            owner = pwd.getpwnam(SYSTEM_USER)
            os.chown(path, owner.pw_uid, owner.pw_gid)
