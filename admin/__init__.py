"""chatd-admin: manage chatd accounts, query and export the chat logs."""
