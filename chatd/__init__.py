"""chatd: a multi-user chat server with SQLite storage."""

__version__ = "0.1.0"
