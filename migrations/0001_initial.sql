-- chatd schema, version 1: accounts and everything said.
-- Times are UTC microseconds since the Unix epoch.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    username      TEXT    NOT NULL UNIQUE COLLATE NOCASE,  -- ASCII only, so NOCASE is exact
    password_hash TEXT    NOT NULL,                        -- bcrypt, "$2b$12$..."
    role          TEXT    NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
    disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_at    INTEGER NOT NULL,
    last_login_at INTEGER
);

-- One row per thing said or done in the chat. The sender's and recipient's
-- names are kept beside their ids, so a removed account's messages stay
-- readable in the logs (its ids become NULL).
CREATE TABLE messages (
    id           INTEGER PRIMARY KEY,
    sent_at      INTEGER NOT NULL,
    kind         TEXT    NOT NULL
                 CHECK (kind IN ('public', 'private', 'announce', 'join', 'leave')),
    sender_id    INTEGER REFERENCES users (id) ON DELETE SET NULL,
    sender       TEXT    NOT NULL,
    recipient_id INTEGER REFERENCES users (id) ON DELETE SET NULL,
    recipient    TEXT,
    body         TEXT    NOT NULL DEFAULT '',
    CHECK ((kind = 'private') = (recipient IS NOT NULL))
);

-- A user's history: what they said, and private messages sent to them.
CREATE INDEX messages_by_sender ON messages (sender_id, id);
CREATE INDEX messages_by_recipient ON messages (recipient_id, id) WHERE recipient_id IS NOT NULL;
-- Log queries and exports by date.
CREATE INDEX messages_by_time ON messages (sent_at);
