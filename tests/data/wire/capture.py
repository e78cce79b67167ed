#!/usr/bin/env python3
"""Re-create the server captures in this directory. Loopback only.

Each capture sends a committed NAME.client.bin (built by the ClientHelloBuilder
and checked byte for byte by `wire::hello` tests) to a local server and stores
what the server answers as OUT.server.bin. Needs `openssl` (3.x) and
`gnutls-serv` on PATH. Run from anywhere:

    python3 tests/data/wire/capture.py PKI_DIR

PKI_DIR is a scratch directory; the script creates a throwaway RSA key and
self-signed certificate for CN=localhost and 1024-bit DH parameters there.
The answers differ on each run (server randoms, keys); the tests assert only
what does not.
"""

import os
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
HOST = "127.0.0.1"


def pki(d):
    os.makedirs(d, exist_ok=True)
    if not os.path.exists(f"{d}/rsa.key"):
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{d}/rsa.key",
             "-out", f"{d}/rsa.crt", "-days", "3650", "-subj", "/CN=localhost",
             "-addext", "subjectAltName=DNS:localhost"], check=True, capture_output=True)
    if not os.path.exists(f"{d}/dh1024.pem"):
        subprocess.run(["openssl", "dhparam", "-out", f"{d}/dh1024.pem", "1024"], check=True, capture_output=True)


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_listening(port, proc, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.returncode}")
        try:
            socket.create_connection((HOST, port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not listen")


def records_until_protected(data):
    """Keep whole records up to (not including) the first application_data one."""
    out, i = b"", 0
    while i + 5 <= len(data) and data[i] != 23:
        n = 5 + int.from_bytes(data[i + 3:i + 5], "big")
        out += data[i:i + n]
        i += n
    return out


def exchange(port, hello, idle=1.0):
    data = b""
    with socket.create_connection((HOST, port), timeout=5) as s:
        s.sendall(hello)
        s.settimeout(idle)
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            data += chunk
    return data


def capture(name, hello, server_args, plaintext_only=False, gnutls=False):
    port = free_port()
    if gnutls:
        cmd = ["gnutls-serv", "-p", str(port), "--nodb", "-a"] + server_args
    else:
        cmd = ["openssl", "s_server", "-accept", f"{HOST}:{port}", "-quiet"] + server_args
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_listening(port, proc)
        with open(f"{HERE}/{hello}.client.bin", "rb") as f:
            data = exchange(port, f.read())
    finally:
        proc.kill()
        proc.wait()
    if plaintext_only:
        data = records_until_protected(data)
    with open(f"{HERE}/{name}.server.bin", "wb") as f:
        f.write(data)
    print(f"{name}: {len(data)} bytes")


def capture_s_client_hello():
    """What `openssl s_client` sends: a real ClientHello to parse."""
    with socket.socket() as ls:
        ls.bind((HOST, 0))
        ls.listen(1)
        port = ls.getsockname()[1]
        client = subprocess.Popen(["openssl", "s_client", "-connect", f"{HOST}:{port}", "-servername", "localhost"],
                                  stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        conn, _ = ls.accept()
        conn.settimeout(2)
        data = b""
        while len(data) < 5 or len(data) < 5 + int.from_bytes(data[3:5], "big"):
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
        conn.close()
        client.kill()
        client.wait()
    with open(f"{HERE}/openssl_s_client_hello.bin", "wb") as f:
        f.write(data)
    print(f"openssl_s_client_hello: {len(data)} bytes")


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else "/tmp/netsensor-wire-pki"
    pki(d)
    rsa = ["-cert", f"{d}/rsa.crt", "-key", f"{d}/rsa.key"]
    capture("tls12_ecdhe_rsa", "tls12_hello", rsa + ["-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"])
    capture("tls12_dhe_rsa_dh1024", "tls12_hello",
            rsa + ["-tls1_2", "-cipher", "DHE-RSA-AES128-GCM-SHA256:@SECLEVEL=0", "-dhparam", f"{d}/dh1024.pem"])
    capture("tls12_alert_no_shared_cipher", "tls12_rc4_only_hello", rsa + ["-tls1_2"])
    capture("tls12_adh_dh1024", "tls12_anon_hello",
            ["-nocert", "-tls1_2", "-cipher", "ADH-AES128-SHA:@SECLEVEL=0", "-dhparam", f"{d}/dh1024.pem"])
    capture("tls10_ecdhe_rsa", "tls10_hello", rsa + ["-tls1", "-cipher", "ECDHE-RSA-AES128-SHA:@SECLEVEL=0"])
    capture("tls13_x25519", "tls13_hello", rsa + ["-tls1_3"])
    capture("tls13_hrr_secp256r1", "tls13_empty_key_share_hello", rsa + ["-tls1_3", "-groups", "P-256:X25519"])
    for group, ossl in [("secp256r1", "P-256"), ("secp384r1", "P-384"), ("secp521r1", "P-521"),
                        ("x448", "X448"), ("ffdhe2048", "ffdhe2048")]:
        capture(f"tls13_{group}_placeholder", f"tls13_{group}_share_hello", rsa + ["-tls1_3", "-groups", ossl],
                plaintext_only=True)
    capture("sslv2_hello_to_openssl3", "sslv2_hello", rsa)
    capture("gnutls_tls12_heartbeat_3des", "tls12_heartbeat_cbc_hello",
            ["--heartbeat", "--x509certfile", f"{d}/rsa.crt", "--x509keyfile", f"{d}/rsa.key",
             "--priority", "NORMAL:+3DES-CBC:+RSA:+VERS-TLS1.2"], gnutls=True)
    capture_s_client_hello()


if __name__ == "__main__":
    main()
