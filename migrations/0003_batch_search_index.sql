-- chatd schema, version 3: new messages are indexed for search by the code
-- that inserts them (chatd/storage/messages.py, one INSERT ... SELECT per
-- batch), not by a trigger per row. Through the trigger FTS5 cost about
-- 37 us a message, more than the rest of the insert; batched, a fraction.
-- Deletes and edits stay with their triggers.
DROP TRIGGER messages_fts_after_insert;
