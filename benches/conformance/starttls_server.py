#!/usr/bin/env python3
"""A STARTTLS test server for the conformance testbed (Python `ssl`, i.e. the system OpenSSL).

    python3 starttls_server.py --proto smtp|imap|pop3 --port P --cert CHAIN --key KEY
                               --ciphers STRING [--serverpref|--clientpref] [--max-tls12]

Binds 127.0.0.1 only. Speaks just enough of the plaintext protocol to reach the upgrade:
  smtp (RFC 3207): `220` greeting; EHLO -> `250-` lines ending `250 STARTTLS`; STARTTLS -> `220 Ready`
  imap (RFC 9051): `* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED]`; CAPABILITY; STARTTLS -> `tag OK`
  pop3 (RFC 2595): `+OK` greeting; CAPA lists STLS; STLS -> `+OK Begin TLS`
then wraps the socket server-side and completes the handshake; after it, EHLO/CAPABILITY/CAPA
(without STARTTLS), NOOP and QUIT/LOGOUT are answered until the client leaves. One thread per
connection (many concurrent connections), every connection bounded in time (TIMEOUT per read,
LIFETIME in total). TLS 1.2 + 1.3; the TLS 1.2 suites are `SSLContext.set_ciphers(STRING)`, the
TLS 1.3 ones Python's (OpenSSL's) defaults. Stdlib only.
"""
from __future__ import annotations

import argparse
import socket
import socketserver
import ssl
import sys
import time

HOST = "127.0.0.1"
TIMEOUT = 10.0    # seconds per read / handshake
LIFETIME = 60.0   # seconds a connection may live in total
NAME = "testbed.invalid"


class Conn:
    """Line I/O over a plain or TLS socket with the connection's deadline."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buf = b""
        self.deadline = time.monotonic() + LIFETIME

    def _timeout(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("connection lifetime exceeded")
        return min(TIMEOUT, left)

    def send(self, text: str) -> None:
        self.sock.settimeout(self._timeout())
        self.sock.sendall(text.encode())

    def line(self) -> str | None:
        while b"\n" not in self.buf:
            if len(self.buf) > 4096:
                return None
            self.sock.settimeout(self._timeout())
            chunk = self.sock.recv(4096)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode(errors="replace")

    def upgrade(self, ctx: ssl.SSLContext) -> None:
        if self.buf:  # pipelined bytes before the handshake: RFC 3207 says discard / refuse
            raise ValueError("data after STARTTLS before the handshake")
        self.sock.settimeout(self._timeout())
        self.sock = ctx.wrap_socket(self.sock, server_side=True, do_handshake_on_connect=True)


def smtp(c: Conn, ctx: ssl.SSLContext) -> None:
    tls = False
    c.send(f"220 {NAME} ESMTP netsensor-conformance\r\n")
    while (line := c.line()) is not None:
        cmd = line.split(" ", 1)[0].upper()
        if cmd == "EHLO":
            ext = ["PIPELINING", "SIZE 10240000", "8BITMIME"] + ([] if tls else ["STARTTLS"])
            c.send(f"250-{NAME} hello\r\n" + "".join(
                f"250{'-' if i < len(ext) - 1 else ' '}{e}\r\n" for i, e in enumerate(ext)))
        elif cmd == "HELO":
            c.send(f"250 {NAME}\r\n")
        elif cmd == "STARTTLS" and not tls:
            c.send("220 Ready to start TLS\r\n")
            c.upgrade(ctx)
            tls = True
        elif cmd in ("NOOP", "RSET"):
            c.send("250 OK\r\n")
        elif cmd == "QUIT":
            c.send("221 Bye\r\n")
            return
        else:
            c.send("502 5.5.2 Command not implemented\r\n" if tls else "530 5.7.0 Must issue a STARTTLS command first\r\n")


def imap(c: Conn, ctx: ssl.SSLContext) -> None:
    tls = False
    c.send("* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] netsensor-conformance ready\r\n")
    while (line := c.line()) is not None:
        parts = line.split(" ", 2)
        tag, cmd = parts[0], (parts[1].upper() if len(parts) > 1 else "")
        if cmd == "CAPABILITY":
            c.send(f"* CAPABILITY IMAP4rev1 {'AUTH=PLAIN' if tls else 'STARTTLS LOGINDISABLED'}\r\n"
                   f"{tag} OK CAPABILITY completed\r\n")
        elif cmd == "STARTTLS" and not tls:
            c.send(f"{tag} OK Begin TLS negotiation now\r\n")
            c.upgrade(ctx)
            tls = True
        elif cmd == "NOOP":
            c.send(f"{tag} OK NOOP completed\r\n")
        elif cmd == "LOGOUT":
            c.send(f"* BYE logging out\r\n{tag} OK LOGOUT completed\r\n")
            return
        else:
            c.send(f"{tag} BAD command not supported\r\n")


def pop3(c: Conn, ctx: ssl.SSLContext) -> None:
    tls = False
    c.send("+OK netsensor-conformance POP3 ready\r\n")
    while (line := c.line()) is not None:
        cmd = line.split(" ", 1)[0].upper()
        if cmd == "CAPA":
            c.send("+OK Capability list follows\r\nUSER\r\n" + ("" if tls else "STLS\r\n") + ".\r\n")
        elif cmd == "STLS" and not tls:
            c.send("+OK Begin TLS negotiation\r\n")
            c.upgrade(ctx)
            tls = True
        elif cmd == "NOOP":
            c.send("+OK\r\n")
        elif cmd == "QUIT":
            c.send("+OK Bye\r\n")
            return
        else:
            c.send("-ERR command not supported\r\n")


DIALOGS = {"smtp": smtp, "imap": imap, "pop3": pop3}


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--proto", choices=sorted(DIALOGS), required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--cert", required=True, help="leaf + intermediate PEM")
    ap.add_argument("--key", required=True)
    ap.add_argument("--ciphers", required=True, help="TLS 1.2 cipher string (SSLContext.set_ciphers)")
    ap.add_argument("--clientpref", action="store_true", help="follow the client's order (default: server's)")
    ap.add_argument("--max-tls12", action="store_true", help="no TLS 1.3")
    args = ap.parse_args()

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2 if args.max_tls12 else ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(args.cert, args.key)
    ctx.set_ciphers(args.ciphers)
    # CPython sets OP_CIPHER_SERVER_PREFERENCE on every context: make the choice explicit
    if args.clientpref:
        ctx.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    else:
        ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    dialog = DIALOGS[args.proto]

    class Handler(socketserver.BaseRequestHandler):
        def handle(self):
            c = Conn(self.request)
            try:
                dialog(c, ctx)
            except (OSError, ssl.SSLError, ValueError, TimeoutError):
                pass  # scanners abort handshakes all the time
            finally:
                try:
                    c.sock.close()
                except OSError:
                    pass

    with Server((HOST, args.port), Handler) as srv:
        print(f"{args.proto} STARTTLS on {HOST}:{args.port}", file=sys.stderr, flush=True)
        try:
            srv.serve_forever(poll_interval=0.5)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
