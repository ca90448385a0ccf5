"""The sinks a batch of records is sent to, configured by URL (``AUDIT_FORWARD_SINKS``).

- ``syslog+tcp://host:514`` and ``syslog+tls://host:6514``: RFC 5424 messages, octet-counted
  framing (RFC 6587 / RFC 5425). A batch is one connection: the records, then our end of the
  connection is shut and the sink's close awaited, so a batch counts as sent only once the
  sink has read all of it. ``?ca=/path/ca.pem`` trusts a private CA (TLS).
- ``syslog+udp://host:514``: one datagram per record, best effort (nothing tells a lost
  datagram; the cursor advances once they are sent).
- ``http://`` / ``https://``: one POST per batch; a 2xx accepts it. The body follows the
  path or ``?format=``: ``hec`` (Splunk HTTP Event Collector, ``/services/collector...``),
  ``otlp`` (OpenTelemetry OTLP/HTTP JSON logs, ``/v1/logs``), else ``jsonl`` (one JSON record
  a line). A token is the URL's user info, sent as ``Authorization: Splunk <token>`` to HEC
  and ``Bearer <token>`` otherwise (``?auth=splunk|bearer`` to choose).

Credentials never leave this module: a sink's ``name`` (cursors, the dashboard, logs and
errors) is its URL without user info or query.
"""

from __future__ import annotations

import json
import socket
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

SYSLOG_SCHEMES = {"syslog+tcp": 514, "syslog+tls": 6514, "syslog+udp": 514}
HTTP_SCHEMES = {"http": 80, "https": 443}
# syslog severities of the records' OCSF severity_id (RFC 5424 6.2.1)
SYSLOG_SEVERITY = {1: 6, 2: 5, 3: 4, 4: 3, 5: 2, 6: 1}
FACILITY_AUTHPRIV = 10
# The structured-data id of the records' parameters: 32473 is RFC 5424's example enterprise
# number; an installation with its own private enterprise number sets AUDIT_FORWARD_SD_ID.
DEFAULT_SD_ID = "msc@32473"


class SinkError(Exception):
    """A batch the sink did not accept; the message never holds credentials."""


class ConfigError(ValueError):
    """A sink URL that cannot be used, said in a sentence."""


@dataclass
class Sink:
    url: str
    name: str
    scheme: str
    host: str
    port: int
    options: dict
    token: str = ""
    timeout: float = 10.0

    def send(self, records: list[dict]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Nothing is kept open between batches."""


def _sd_escape(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def syslog_message(record: dict, *, hostname: str, app_name: str = "marine-center",
                   sd_id: str = DEFAULT_SD_ID) -> bytes:
    """One RFC 5424 message: the record's JSON as MSG, its ids as structured data."""
    pri = FACILITY_AUTHPRIV * 8 + SYSLOG_SEVERITY.get(record.get("severity_id", 1), 6)
    moment = datetime.fromtimestamp(record["time"] / 1000, tz=UTC)
    timestamp = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    meta = record["metadata"]
    msgid = str(record.get("class_uid", "-"))
    params = {"uid": meta["uid"], "table": meta["log_name"], "request_id": meta.get("correlation_uid", ""),
              "class_uid": record.get("class_uid", ""), "activity_id": record.get("activity_id", "")}
    sd = "[" + sd_id + "".join(f' {k}="{_sd_escape(v)}"' for k, v in params.items()) + "]"
    header = f"<{pri}>1 {timestamp} {hostname[:255] or '-'} {app_name} - {msgid} {sd} "
    return header.encode("utf-8") + json.dumps(record, separators=(",", ":"), sort_keys=True).encode("utf-8")


class SyslogSink(Sink):
    def _hostname(self) -> str:
        return socket.gethostname() or "-"

    def _messages(self, records):
        hostname = self._hostname()
        sd_id = self.options.get("sd_id") or DEFAULT_SD_ID
        return [syslog_message(r, hostname=hostname, sd_id=sd_id) for r in records]

    def send(self, records: list[dict]) -> None:
        messages = self._messages(records)
        try:
            if self.scheme == "syslog+udp":
                with socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_DGRAM) as s:
                    for message in messages:
                        s.sendto(message, (self.host, self.port))
                return
            frames = b"".join(str(len(m)).encode() + b" " + m for m in messages)
            raw = socket.create_connection((self.host, self.port), timeout=self.timeout)
            try:
                conn = raw
                if self.scheme == "syslog+tls":
                    context = ssl.create_default_context(cafile=self.options.get("ca") or None)
                    conn = context.wrap_socket(raw, server_hostname=self.host)
                conn.sendall(frames)
                if isinstance(conn, ssl.SSLSocket):
                    conn = conn.unwrap()  # TLS close_notify, then the plain shutdown below
                conn.shutdown(socket.SHUT_WR)
                # the sink closes once it has read everything we sent: wait for that
                while conn.recv(4096):
                    pass
            finally:
                raw.close()
        except (OSError, ssl.SSLError) as exc:
            raise SinkError(f"{self.name}: {type(exc).__name__}: {exc.strerror or exc}"
                            if isinstance(exc, OSError) and exc.strerror else f"{self.name}: {type(exc).__name__}: {exc}"
                            ) from None


class HttpSink(Sink):
    def _format(self) -> str:
        fmt = self.options.get("format", "")
        if fmt:
            return fmt
        path = urlsplit(self.url).path
        if "/services/collector" in path:
            return "hec"
        if path.endswith("/v1/logs"):
            return "otlp"
        return "jsonl"

    def body(self, records: list[dict]) -> tuple[bytes, str]:
        fmt = self._format()
        if fmt == "hec":
            return b"".join(json.dumps({"time": r["time"] / 1000, "source": "marine-center",
                                        "sourcetype": "ocsf:" + str(r["class_uid"]), "event": r},
                                       separators=(",", ":")).encode() for r in records), "application/json"
        if fmt == "otlp":
            logs = [{
                "timeUnixNano": str(r["time"] * 1_000_000),
                "severityNumber": {1: 9, 2: 10, 3: 13, 4: 17, 5: 21, 6: 24}.get(r["severity_id"], 9),
                "severityText": r["severity"],
                "body": {"stringValue": json.dumps(r, separators=(",", ":"), sort_keys=True)},
                "attributes": [
                    {"key": "ocsf.class_uid", "value": {"intValue": str(r["class_uid"])}},
                    {"key": "ocsf.metadata.uid", "value": {"stringValue": r["metadata"]["uid"]}},
                    {"key": "request.id", "value": {"stringValue": r["metadata"]["correlation_uid"]}},
                ],
            } for r in records]
            doc = {"resourceLogs": [{
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "marine-center"}}]},
                "scopeLogs": [{"scope": {"name": "audit"}, "logRecords": logs}],
            }]}
            return json.dumps(doc, separators=(",", ":")).encode(), "application/json"
        return b"".join(json.dumps(r, separators=(",", ":"), sort_keys=True).encode() + b"\n"
                        for r in records), "application/x-ndjson"

    def send(self, records: list[dict]) -> None:
        data, content_type = self.body(records)
        parts = urlsplit(self.url)
        target = parts._replace(netloc=f"{self.host}:{self.port}" if ":" not in self.host else f"[{self.host}]:{self.port}",
                                query="").geturl()
        request = urllib.request.Request(target, data=data, method="POST",
                                         headers={"Content-Type": content_type, "User-Agent": "marine-center-forwarder"})
        if self.token:
            scheme = self.options.get("auth") or ("splunk" if self._format() == "hec" else "bearer")
            request.add_header("Authorization", f"{'Splunk' if scheme == 'splunk' else 'Bearer'} {self.token}")
        context = ssl.create_default_context(cafile=self.options.get("ca") or None) if self.scheme == "https" else None
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=context) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            raise SinkError(f"{self.name}: HTTP {exc.code} {exc.reason}") from None
        except (OSError, ssl.SSLError) as exc:
            reason = getattr(exc, "reason", exc)
            raise SinkError(f"{self.name}: {type(exc).__name__}: {reason}") from None


def parse(url: str, *, timeout: float = 10.0) -> Sink:
    """The sink of one URL; a :class:`ConfigError` says what is wrong (without the credentials)."""
    url = url.strip()
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    safe = f"{scheme}://{parts.hostname or ''}{parts.path}"
    if scheme not in SYSLOG_SCHEMES and scheme not in HTTP_SCHEMES:
        raise ConfigError(f"AUDIT_FORWARD_SINKS: {safe!r} is not a sink; use syslog+tcp://, syslog+tls://, "
                          "syslog+udp://, http:// or https://.")
    if not parts.hostname:
        raise ConfigError(f"AUDIT_FORWARD_SINKS: {safe!r} names no host.")
    try:
        port = parts.port or {**SYSLOG_SCHEMES, **HTTP_SCHEMES}[scheme]
    except ValueError:
        raise ConfigError(f"AUDIT_FORWARD_SINKS: {safe!r} has a port that is not a number.") from None
    options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    if options.get("format") not in (None, "hec", "otlp", "jsonl"):
        raise ConfigError(f"AUDIT_FORWARD_SINKS: {safe!r}: format must be hec, otlp or jsonl.")
    if options.get("auth") not in (None, "splunk", "bearer"):
        raise ConfigError(f"AUDIT_FORWARD_SINKS: {safe!r}: auth must be splunk or bearer.")
    token = parts.password or parts.username or ""
    name = f"{scheme}://{parts.hostname}:{port}{parts.path}"
    cls = SyslogSink if scheme in SYSLOG_SCHEMES else HttpSink
    return cls(url=url, name=name, scheme=scheme, host=parts.hostname, port=port, options=options, token=token,
               timeout=timeout)
