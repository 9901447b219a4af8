-- chatd schema, version 2: full-text search and queries by sender name.

-- An FTS5 index over message bodies, kept in sync with `messages` by the
-- triggers below ("external content": the text is stored once, in messages).
CREATE VIRTUAL TABLE messages_fts USING fts5 (
    body,
    content = 'messages',
    content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);

-- Index whatever the database already holds.
INSERT INTO messages_fts (messages_fts) VALUES ('rebuild');

CREATE TRIGGER messages_fts_after_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts (rowid, body) VALUES (new.id, new.body);
END;

CREATE TRIGGER messages_fts_after_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, body) VALUES ('delete', old.id, old.body);
END;

CREATE TRIGGER messages_fts_after_update AFTER UPDATE OF body ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, body) VALUES ('delete', old.id, old.body);
    INSERT INTO messages_fts (rowid, body) VALUES (new.id, new.body);
END;

-- `chatd-admin logs --user NAME`: by the name kept in each message, so the
-- messages of removed accounts can be found too.
CREATE INDEX messages_by_sender_name ON messages (sender COLLATE NOCASE, sent_at);
