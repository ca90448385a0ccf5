"""Collectors on 127.0.0.1 for the forwarding tests, on ports chosen at run time: syslog over
TCP (optionally TLS, octet-counted frames) and UDP, and HTTP. Each can be stopped and started
again on the same port (a sink outage)."""

from __future__ import annotations

import datetime as dt
import http.server
import ipaddress
import json
import re
import socket
import socketserver
import ssl
import threading
import time
from pathlib import Path

RFC5424 = re.compile(
    rb"^<(?P<pri>\d{1,3})>1 (?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (?P<host>\S+) (?P<app>\S+) (?P<procid>\S+) "
    rb"(?P<msgid>\S+) (?P<sd>\[msc@32473(?: [a-z_]+=\"(?:[^\"\\\]]|\\.)*\")*\]) (?P<msg>\{.*\})$", re.S)


def parse_syslog(message: bytes) -> dict:
    """An RFC 5424 message's parts; its MSG is the record's JSON."""
    match = RFC5424.match(message)
    assert match, f"not an RFC 5424 message: {message[:200]!r}"
    parts = {k: v.decode() for k, v in match.groupdict().items()}
    parts["record"] = json.loads(match["msg"])
    parts["params"] = dict(re.findall(r'([a-z_]+)="((?:[^"\\\]]|\\.)*)"', parts["sd"]))
    return parts


class _Restartable:
    def __init__(self):
        self.port = 0
        self.server = None
        self.received: list = []
        self.lock = threading.Lock()

    def _make(self):
        raise NotImplementedError

    def start(self):
        self.server = self._make()
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


class SyslogTCP(_Restartable):
    """Reads octet-counted RFC 5424 frames until the sender shuts its side, then closes."""

    def __init__(self, tls_dir: Path | None = None):
        super().__init__()
        self.tls = None
        if tls_dir is not None:
            self.certfile = make_certificate(tls_dir)
            self.tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self.tls.load_cert_chain(self.certfile)

    def _make(self):
        collector = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                conn = self.request
                if collector.tls is not None:
                    conn = collector.tls.wrap_socket(conn, server_side=True)
                data = b""
                while True:
                    try:
                        chunk = conn.recv(65536)
                    except ssl.SSLZeroReturnError:
                        break
                    if not chunk:
                        break
                    data += chunk
                frames = []
                while data:
                    length, _, rest = data.partition(b" ")
                    size = int(length)
                    frames.append(rest[:size])
                    data = rest[size:]
                with collector.lock:
                    collector.received.extend(frames)
                if isinstance(conn, ssl.SSLSocket):
                    try:
                        conn = conn.unwrap()
                    except (ssl.SSLError, OSError):
                        pass
                conn.close()

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

        return Server(("127.0.0.1", self.port), Handler)


class SyslogUDP(_Restartable):
    def _make(self):
        collector = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                with collector.lock:
                    collector.received.append(self.request[0])

        class Server(socketserver.UDPServer):
            allow_reuse_address = True

        return Server(("127.0.0.1", self.port), Handler)


class HTTPCollector(_Restartable):
    """Keeps each POST's headers and body; answers ``status`` (set it to 503 for an outage)."""

    def __init__(self):
        super().__init__()
        self.status = 200
        self.delay = 0.0  # seconds each POST waits before it is answered (a slow collector)

    def _make(self):
        collector = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                time.sleep(collector.delay)
                if collector.status < 300:
                    with collector.lock:
                        collector.received.append({"path": self.path, "headers": dict(self.headers), "body": body})
                self.send_response(collector.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        class Server(http.server.ThreadingHTTPServer):
            allow_reuse_address = True
            daemon_threads = True

        return Server(("127.0.0.1", self.port), Handler)

    def records(self) -> list[dict]:
        """The JSON Lines records received, in order."""
        return [json.loads(line) for post in self.received for line in post["body"].splitlines() if line]


def make_certificate(directory: Path) -> str:
    """A self-signed certificate (and key) for 127.0.0.1, as one PEM file; also the client's CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    path = directory / "collector.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()) + cert.public_bytes(serialization.Encoding.PEM))
    ca = directory / "ca.pem"
    ca.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return str(path)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
