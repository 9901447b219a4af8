-- An account's away message on a node (IRC's AWAY; '' when not away), so that
-- WHOIS, WHO, USERHOST and private messages on the other nodes show it too.
ALTER TABLE node_sessions ADD COLUMN away TEXT NOT NULL DEFAULT '';
