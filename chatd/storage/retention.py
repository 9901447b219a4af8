"""Deleting messages for good: old ones (retention, `chatd-admin purge`) and a user's.

Large deletions go a chunk at a time, and the caller commits each chunk in its
own transaction: a running server's writer then waits for one chunk (tens of
milliseconds), never for the whole deletion. Deleted rows leave the search
index too (the messages_fts_after_delete trigger), so neither search, logs,
stats nor exports can show them again. Message ids are never handed out twice
(AUTOINCREMENT, a sequence), so deleting never disturbs catching up, which counts by id.
"""

from __future__ import annotations

from chatd.storage import users
from chatd.storage.engines import Connection, engine_of

CHUNK = 5000  # messages deleted per transaction: ~50 ms of the write lock


def _before(room_id: int | None) -> tuple[str, str]:
    """The condition for messages sent before :before (in room :room if given), and the
    order that reads them oldest first along the index that finds them."""
    if room_id is None:  # the (sent_at) index
        return "sent_at < :before", "sent_at, id"
    # The room's (room_id, id) index: ids are handed out in the order messages are said.
    return "room_id = :room AND sent_at < :before", "id"


def count_before(conn: Connection, before: int, room_id: int | None = None) -> int:
    """How many messages of every kind were sent before `before` (UTC microseconds)."""
    where, _ = _before(room_id)
    row = conn.execute(
        f"SELECT count(*) FROM messages WHERE {where}", {"before": before, "room": room_id}
    )
    return int(row.fetchone()[0])


def purge_chunk(
    conn: Connection, before: int, room_id: int | None = None, limit: int = CHUNK
) -> int:
    """Delete up to `limit` of the oldest messages (every kind) sent before `before`,
    only in one room if `room_id` is given; return how many were deleted.

    Call it in a write transaction, one per chunk, until it returns less than `limit`.
    """
    where, order = _before(room_id)
    cursor = conn.execute(
        "DELETE FROM messages WHERE id IN"
        f" (SELECT id FROM messages WHERE {where} ORDER BY {order} LIMIT :limit)",
        {"before": before, "room": room_id, "limit": limit},
    )
    return cursor.rowcount


# What forgetting an account deletes: every message it wrote (of every kind,
# joins and topics included) and every private message sent to it.
# Two index range scans (by sender, by recipient), each stopped after :limit rows.
_OF_USER = (
    "SELECT id FROM (SELECT id FROM messages WHERE sender_id = :user"
    "  ORDER BY id LIMIT :limit) AS written"
    " UNION ALL"
    " SELECT id FROM (SELECT id FROM messages WHERE recipient_id = :user"
    "  AND sender_id IS DISTINCT FROM :user ORDER BY id LIMIT :limit) AS received"
)


def count_of_user(conn: Connection, user_id: int) -> int:
    """How many messages forgetting the account would delete."""
    row = conn.execute(
        "SELECT (SELECT count(*) FROM messages WHERE sender_id = :user)"
        " + (SELECT count(*) FROM messages WHERE recipient_id = :user"
        "    AND sender_id IS DISTINCT FROM :user)",
        {"user": user_id},
    )
    return int(row.fetchone()[0])


def forget_chunk(conn: Connection, user_id: int, limit: int | None = CHUNK) -> int:
    """Delete up to `limit` of the messages an account wrote or was sent privately;
    return how many were deleted. The account stays: see forget_user.

    Call it in a write transaction, one per chunk, until it returns less than `limit`
    (None: no limit).
    """
    cursor = conn.execute(
        f"DELETE FROM messages WHERE id IN (SELECT id FROM ({_OF_USER}) AS doomed LIMIT :limit)",
        {"user": user_id, "limit": engine_of(conn).no_limit if limit is None else limit},
    )
    return cursor.rowcount


def forget_user(conn: Connection, username: str) -> int:
    """Delete an account and every message it wrote or was sent privately (the right to
    be forgotten); return how many messages were deleted. Raises UnknownUserError.

    Its memberships go with it (ON DELETE CASCADE). Everything left is deleted in
    the caller's one transaction: for a long history, call forget_chunk first.
    """
    user = users.get(conn, username)
    deleted = forget_chunk(conn, user.id, limit=None)
    users.remove(conn, user.username)
    return deleted
