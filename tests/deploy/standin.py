"""standin.py — a stand-in for a daed replica behind nginx, for tests/deploy/nginx_timeouts.sh.

Usage: standin.py MODE PORTFILE LOGFILE
  ok         answers every request 200 at once (keep-alive)
  silent     reads each request, then answers nothing and holds the connection (a replica
             busy with a long photo: nginx's read timeout)
  blackhole  a listening socket whose accept queue is full and never drained: Linux drops
             the SYNs of new connections, so connecting times out (like the address of a
             replica that stopped)
Listens on 127.0.0.1 on a port the kernel picks, written to PORTFILE. Every complete
request it receives (headers and Content-Length bytes of body) appends "MODE METHOD PATH"
to LOGFILE. Runs until killed.
"""
import os
import socket
import sys
import threading
import time

MAX_HEAD = 64 * 1024


def read_request(conn, buf):
    """One request from conn (buf: bytes already read). Returns (request line, rest) or
    (None, b"") when the peer closed."""
    while b"\r\n\r\n" not in buf:
        if len(buf) > MAX_HEAD:
            return None, b""
        chunk = conn.recv(65536)
        if not chunk:
            return None, b""
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    while len(rest) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return None, b""
        rest += chunk
    return lines[0], rest[length:]


def serve(conn, mode, log, lock):
    buf = b""
    with conn:
        while True:
            line, buf = read_request(conn, buf)
            if line is None:
                return
            method, path = (line.split(" ") + ["", ""])[:2]
            with lock, open(log, "a") as f:
                f.write(f"{mode} {method} {path}\n")
            if mode == "silent":
                while conn.recv(65536):  # until nginx gives up and closes
                    pass
                return
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                         b"Content-Length: 3\r\n\r\nok\n")


def main():
    mode, portfile, log = sys.argv[1:4]
    if mode not in ("ok", "silent", "blackhole"):
        sys.exit(f"standin.py: unknown mode {mode}")
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.bind(("127.0.0.1", 0))
    held = []
    if mode == "blackhole":
        # Backlog 0: one connection fills the accept queue; it is never accepted, and the
        # kernel drops further SYNs (no RST), so connect() to this port times out.
        ls.listen(0)
        for _ in range(2):
            c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            c.setblocking(False)
            c.connect_ex(ls.getsockname())
            held.append(c)
        time.sleep(0.2)
    else:
        ls.listen(64)
    with open(portfile + ".tmp", "w") as f:
        f.write(f"{ls.getsockname()[1]}\n")
    os.rename(portfile + ".tmp", portfile)
    if mode == "blackhole":
        while True:
            time.sleep(3600)
    lock = threading.Lock()
    while True:
        conn, _ = ls.accept()
        threading.Thread(target=serve, args=(conn, mode, log, lock), daemon=True).start()


if __name__ == "__main__":
    main()
