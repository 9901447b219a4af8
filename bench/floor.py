"""The floor: the least a broadcast chat server can do, for comparison.

A thread per client, no accounts, no storage, no limits. It speaks chatd's
lines (so the same load generator drives both): the first line is the
user's name, the second (the password) is ignored; then every line comes
back as "You said: ..." and goes to everyone else as "name: ...".

    python bench/floor.py PORT
"""

from __future__ import annotations

import socket
import sys
import threading

clients: dict[socket.socket, str] = {}
lock = threading.Lock()


def serve(conn: socket.socket) -> None:
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    reader = conn.makefile("rb")
    try:
        name = reader.readline().strip().decode()
        reader.readline()  # the password: anything goes
        conn.sendall(f"Welcome, {name}!\r\n".encode())
        with lock:
            clients[conn] = name
        for raw in reader:
            text = raw.rstrip(b"\r\n")
            to_others = name.encode() + b": " + text + b"\r\n"
            with lock:
                for other in clients:
                    other.sendall(b"You said: " + text + b"\r\n" if other is conn else to_others)
    except OSError:
        pass
    finally:
        with lock:
            clients.pop(conn, None)
        conn.close()


def main() -> None:
    listener = socket.create_server(("127.0.0.1", int(sys.argv[1])), backlog=1024)
    print(f"[+] Server started on port {listener.getsockname()[1]}", flush=True)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
