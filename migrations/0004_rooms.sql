-- chatd schema, version 4: rooms, membership, topics and catching up.
--
-- Every existing message said in public (and every join, leave and
-- announcement) lands in #general, the room everyone is always in; private
-- messages belong to no room. Nothing is lost: the messages table is rebuilt
-- with the same ids, so the search index (keyed by id) stays valid as it is.

CREATE TABLE rooms (
    id         INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL UNIQUE,  -- '#dev': '#' and 1-32 of a-z 0-9 _ -, lower case
    topic      TEXT    NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL
);

-- #general is room 1. Its membership is implicit: every account is in it.
INSERT INTO rooms (id, name, created_at)
VALUES (1, '#general', CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER));

-- Membership of the other rooms, per account (not per session).
CREATE TABLE memberships (
    room_id   INTEGER NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id   INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    joined_at INTEGER NOT NULL,
    PRIMARY KEY (room_id, user_id)
) WITHOUT ROWID;
CREATE INDEX memberships_by_user ON memberships (user_id, room_id);

-- Catching up: the id of the last message an account's sessions were sent
-- before its last one logged out. NULL: never logged in since (its first
-- login counts as joining its rooms). Carried over from each account's last
-- leave, so nobody is shown what they had already seen before the upgrade.
ALTER TABLE users ADD COLUMN seen_upto INTEGER;
UPDATE users SET seen_upto = (
    SELECT max(id) FROM messages WHERE sender_id = users.id AND kind = 'leave'
);

-- The messages table, rebuilt with a room and a new kind ('topic').
-- AUTOINCREMENT: an id is never handed out twice, even after the newest
-- messages were deleted, so "everything after id N" stays exact for catching up.
DROP TRIGGER messages_fts_after_delete;
DROP TRIGGER messages_fts_after_update;

CREATE TABLE messages_v4 (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    sent_at      INTEGER NOT NULL,
    kind         TEXT    NOT NULL
                 CHECK (kind IN ('public', 'private', 'announce', 'join', 'leave', 'topic')),
    room_id      INTEGER REFERENCES rooms (id) ON DELETE CASCADE,
    sender_id    INTEGER REFERENCES users (id) ON DELETE SET NULL,
    sender       TEXT    NOT NULL,
    recipient_id INTEGER REFERENCES users (id) ON DELETE SET NULL,
    recipient    TEXT,
    body         TEXT    NOT NULL DEFAULT '',
    CHECK ((kind = 'private') = (recipient IS NOT NULL)),
    CHECK ((kind = 'private') = (room_id IS NULL))
);

INSERT INTO messages_v4 (id, sent_at, kind, room_id, sender_id, sender, recipient_id, recipient, body)
SELECT id, sent_at, kind, iif(kind = 'private', NULL, 1),
       sender_id, sender, recipient_id, recipient, body
FROM messages ORDER BY id;

DROP TABLE messages;
ALTER TABLE messages_v4 RENAME TO messages;

CREATE INDEX messages_by_sender ON messages (sender_id, id);
CREATE INDEX messages_by_recipient ON messages (recipient_id, id) WHERE recipient_id IS NOT NULL;
CREATE INDEX messages_by_time ON messages (sent_at);
CREATE INDEX messages_by_sender_name ON messages (sender COLLATE NOCASE, sent_at);
-- What people wrote in a room (catching up, /history #room, room summaries):
-- counting what came while someone was away reads only this index, never the
-- joins and leaves (a first login on a new database would otherwise count
-- every earlier one's). The admin's queries of a room's every kind (logs,
-- exports and purge with --room) go by time instead: one index less to keep
-- up on every message.
CREATE INDEX messages_said_by_room ON messages (room_id, id) WHERE kind IN ('public', 'announce');

-- Deletes (purge, forget-user, retention) keep the search index in step.
CREATE TRIGGER messages_fts_after_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, body) VALUES ('delete', old.id, old.body);
END;

CREATE TRIGGER messages_fts_after_update AFTER UPDATE OF body ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, body) VALUES ('delete', old.id, old.body);
    INSERT INTO messages_fts (rowid, body) VALUES (new.id, new.body);
END;
