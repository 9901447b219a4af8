"""Import accounts from a users file (default ./users.txt) into the chatd database.

    python import_users.py [users.txt] [--db chat.db]

The same code as `chatd-admin import-users`: new accounts are added with
bcrypt hashes; existing ones keep their password.
"""

from admin.cli import import_users_main

if __name__ == "__main__":
    import_users_main()
