import pytest

from tests.forwarding.servers import HTTPCollector, SyslogTCP, SyslogUDP


@pytest.fixture
def syslog_tcp():
    server = SyslogTCP().start()
    yield server
    server.stop()


@pytest.fixture
def syslog_tls(tmp_path):
    server = SyslogTCP(tls_dir=tmp_path).start()
    yield server
    server.stop()


@pytest.fixture
def syslog_udp():
    server = SyslogUDP().start()
    yield server
    server.stop()


@pytest.fixture
def http_sink():
    server = HTTPCollector().start()
    yield server
    server.stop()


@pytest.fixture
def write_rows(db):
    """Rows in the four audit tables, each under its own request id ``req-<n>``; returns the
    request ids in order."""
    from audit import services
    from audit.context import audit_context

    def write(count=3, start=0):
        ids = []
        for n in range(start, start + count):
            request_id = f"req-{n}"
            with audit_context(actor="PE001", request_id=request_id, ip_address="10.0.0.7", method="GET",
                               path="/requests/"):
                services.log_activity("Viewed maintenance request", f"Request ID: MR{n:03d}")
                services.log_entity_change("maintenance_request", f"MR{n:03d}", "status", "open", "closed",
                                           change_reason="done")
                services.log_system_event("emergency_created", "emergency", f"EM{n:03d}", {"n": n},
                                          severity="warning")
            ids.append(request_id)
        return ids

    return write
