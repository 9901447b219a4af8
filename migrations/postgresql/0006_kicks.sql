-- Kicks between nodes (SPEC §9): an admin's /kick of a user online on another
-- node is a row here, committed with a NOTIFY on chatd_kicks (the doorbell; its
-- payload is the row's id). Every node reads the kicks after the last one it
-- applied, on each notice and on each presence beat, so a node cut off from the
-- database when the kick was made still applies it once it is back. Rows are
-- written under the lock that makes message ids commit in order, so "the kicks
-- after id N" misses none; they are trimmed after an hour.

CREATE TABLE kicks (
    id        BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    node_id   BIGINT      NOT NULL,  -- the sending node (no reference: nodes come and go)
    user_id   BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,  -- who is kicked
    by_name   TEXT        NOT NULL,  -- the admin, as they were named
    reason    TEXT        NOT NULL,
    kicked_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX kicks_by_time ON kicks (kicked_at);
