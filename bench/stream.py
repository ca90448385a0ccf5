"""A thousand live streams on one server process (issue 15.3), on PostgreSQL.

    python -m bench.stream            # BENCH_ONLY=stream make bench
    BENCH_STREAM_CLIENTS=1000 BENCH_STREAM_RATE=50 BENCH_STREAM_SECONDS=20

1. Creates the database ``bench_stream`` (``BENCH_STREAM_DB`` names another)
   with :func:`bench.capture.postgresql_database`, like the other sections,
   migrates it, makes 10 administrators, 10 port engineers and 100 staff
   with API tokens.
2. Starts one uvicorn worker on a free port of 127.0.0.1 whose database
   connections carry the application name ``bench-stream-server``.
3. Opens ``BENCH_STREAM_CLIENTS`` SSE clients (a third administrators, a
   third port engineers, a third staff; at most 50 connecting at once), an
   asyncio load generator of raw HTTP/1.1 connections in this process.
4. Idle: the server's RSS before and after the clients opened (the
   difference per client), and its connections in ``pg_stat_activity``.
5. Writes ``BENCH_STREAM_RATE`` rows a second for ``BENCH_STREAM_SECONDS``
   (activity rows of staff users and of an engineer, audit_trail rows),
   each committed alone; every client notes when each row reaches it.
   Delivery commit -> client p50/p95/max over every (row, client that may
   see it); rows missing; rows a client received that it may not see
   (staff: anything but its own activity); the server's connections sampled
   during the writes.

Targets: connections used by the stream <= 2, delivery p95 <= 500 ms,
memory per idle client <= 50 KB, no row to a client that may not see it.
Writes ``bench/results/stream.json``.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import platform
import random
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.capture import PG_ADMIN_URL, free_port, postgresql_database, setup_django, wait_for_port  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "stream.json"
DB_ENV, DB_DEFAULT = "BENCH_STREAM_DB", "bench_stream"
APP_NAME = "bench-stream-server"
CONNECT_AT_ONCE = 50

# BENCH_STREAM_SERVER_ARGS: more uvicorn options, e.g. "--http h11 --loop asyncio" for the pure-Python
# parser and loop (by default uvicorn takes httptools and uvloop, which requirements.txt installs)
SERVER_ARGS = os.environ.get("BENCH_STREAM_SERVER_ARGS", "").split()


def server_kind() -> str:
    """The HTTP parser and event loop the server runs (uvicorn's 'auto' takes the C ones when installed)."""
    import importlib.util

    def chosen(option, auto_choice):
        if option in SERVER_ARGS:
            return SERVER_ARGS[SERVER_ARGS.index(option) + 1]
        return auto_choice

    http = chosen("--http", "httptools" if importlib.util.find_spec("httptools") else "h11")
    loop = chosen("--loop", "uvloop" if importlib.util.find_spec("uvloop") else "asyncio")
    return f"{http}, {loop}"


TARGET_CONNECTIONS = 2
TARGET_P95_MS = 500.0
TARGET_KB_PER_CLIENT = 50.0

MARK = re.compile(rb'"(?:details|entity_id)":"(m\d+)"')
USER = re.compile(rb'"user_id":"([^"]*)"')


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.nan
    k = (len(ordered) - 1) * q
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def admin_connection():
    import psycopg

    return psycopg.connect(os.environ.get("BENCH_PG_ADMIN_URL", PG_ADMIN_URL), autocommit=True, connect_timeout=5)


def make_users() -> list[dict]:
    from knox.models import AuthToken

    from accounts.models import User

    people = ([(f"ADM{i:03d}", "admin") for i in range(1, 11)] + [(f"PE{i:03d}", "port_engineer") for i in range(1, 11)]
              + [(f"ST{i:03d}", "staff") for i in range(1, 101)])
    out = []
    for user_id, role in people:
        user = User.objects.filter(user_id=user_id).first() or User.objects.create_user(
            user_id=user_id, password="Bench-Pass-2025", role=role, full_name=user_id, email=f"{user_id}@bench.local")
        out.append({"user_id": user_id, "role": role, "token": AuthToken.objects.create(user)[1]})
    return out


def _status(pid: int, name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return int(line.split()[1])
    return 0


def rss_kb(pid: int) -> int:
    return _status(pid, "VmRSS")


def threads(pid: int) -> int:
    return _status(pid, "Threads")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_connections(admin, db_name: str) -> int:
    return admin.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND application_name = %s",
                         [db_name, APP_NAME]).fetchone()[0]


class Client:
    """One SSE client: what it received and when."""

    __slots__ = ("person", "received", "forbidden", "opened", "messages")

    def __init__(self, person: dict):
        self.person = person
        self.received: dict[str, float] = {}
        self.forbidden = 0
        self.opened = asyncio.Event()
        self.messages = 0

    def may_see(self, kind: str, user_id: str) -> bool:
        return self.person["role"] != "staff" or (kind == "activity" and user_id == self.person["user_id"])

    async def run(self, port: int, gate: asyncio.Semaphore, seconds: float) -> None:
        async with gate:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            kinds = "activity" if self.person["role"] == "staff" else "activity,audit"
            writer.write((f"GET /api/realtime/stream?kinds={kinds}&timeout={seconds} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                          f"Authorization: Bearer {self.person['token']}\r\nAccept: text/event-stream\r\n\r\n").encode())
            await writer.drain()
            while not self.opened.is_set():
                line = await reader.readline()
                if not line:
                    return
                if line.startswith(b": stream open"):
                    self.opened.set()
        # whole chunks split into messages (a readline per line costs this generator more CPU than the
        # server spends on the message)
        pending = b""
        try:
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                now = time.monotonic()
                pending += chunk
                *messages, pending = pending.split(b"\n\n")
                for message in messages:
                    at = message.find(b"event: ")
                    if at < 0:
                        continue
                    self.messages += 1
                    kind = message[at + 7:message.index(b"\n", at)]
                    mark = MARK.search(message)
                    if mark is None:
                        continue
                    who = USER.search(message)
                    if not self.may_see(kind.decode(), who.group(1).decode() if who else ""):
                        self.forbidden += 1
                    self.received.setdefault(mark.group(1).decode(), now)
        finally:
            writer.close()


def write_rows(rate: float, seconds: float, staff_ids: list[str]) -> list[dict]:
    """Rows committed one by one at ``rate`` a second: (marker, kind, user_id, commit time)."""
    from audit.context import audit_context
    from audit.models import AuditTrail
    from audit.services import log_activity

    rng = random.Random(15)
    written = []
    start = time.monotonic()
    n = int(rate * seconds)
    for i in range(n):
        target = start + i / rate
        pause = target - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        marker = f"m{i}"
        if i % 10 < 7:
            user_id = rng.choice(staff_ids) if i % 2 else "PE001"
            with audit_context(actor=user_id):
                log_activity("bench stream", marker)
            kind = "activity"
        else:
            user_id = "PE001"
            AuditTrail.objects.create(user_id=user_id, action_type="update", entity_type="maintenance_request",
                                      entity_id=marker, status="completed")
            kind = "audit"
        written.append({"marker": marker, "kind": kind, "user_id": user_id, "at": time.monotonic()})
    return written


async def measure(port: int, people: list[dict], clients_n: int, rate: float, seconds: float, pid: int,
                  admin, db_name: str) -> dict:
    managers = [p for p in people if p["role"] != "staff"]
    staff = [p for p in people if p["role"] == "staff"]
    clients = []
    for i in range(clients_n):
        group = (managers[: len(managers) // 2], managers[len(managers) // 2:], staff)[i % 3]
        clients.append(Client(group[(i // 3) % len(group)]))
    gate = asyncio.Semaphore(CONNECT_AT_ONCE)
    stream_seconds = seconds + 60 + clients_n / 20
    # a few clients first: the hub and Django warmed up, so the RSS delta is the clients'
    warm = clients[:10]
    tasks = [asyncio.create_task(c.run(port, gate, stream_seconds)) for c in warm]
    await asyncio.wait_for(asyncio.gather(*(c.opened.wait() for c in warm)), 60)
    await asyncio.sleep(2)
    rss_before = rss_kb(pid)
    started = time.monotonic()
    tasks += [asyncio.create_task(c.run(port, gate, stream_seconds)) for c in clients[10:]]
    await asyncio.wait_for(asyncio.gather(*(c.opened.wait() for c in clients)), 60 + clients_n / 10)
    open_seconds = time.monotonic() - started
    await asyncio.sleep(3)
    rss_after = rss_kb(pid)
    threads_after = threads(pid)
    idle_connections = server_connections(admin, db_name)
    log(f"{clients_n} streams open in {open_seconds:.1f} s; server connections {idle_connections}; "
        f"RSS {rss_before} -> {rss_after} KB; server threads {threads_after}")
    samples = []
    stop = asyncio.Event()

    async def sample():
        while not stop.is_set():
            samples.append(await asyncio.to_thread(server_connections, admin, db_name))
            await asyncio.sleep(0.5)

    sampler = asyncio.create_task(sample())
    staff_ids = [p["user_id"] for p in staff]
    # where the CPU of the write phase goes: the server, and this process (load generator and writer)
    cpu_server, cpu_bench, cpu_at = cpu_seconds(pid), time.process_time(), time.monotonic()
    written = await asyncio.to_thread(write_rows, rate, seconds, staff_ids)
    # the last rows' delivery: until every row reached every client that may see it, or nothing
    # more arrived for 5 s (bounded at 30 s); a row still not there is missing
    expected = sum(c.may_see(r["kind"], r["user_id"]) for c in clients for r in written)
    settle_until = time.monotonic() + 30
    last_count, last_change = -1, time.monotonic()
    while time.monotonic() < settle_until:
        count = sum(len(c.received) for c in clients)
        if count >= expected:
            break
        if count != last_count:
            last_count, last_change = count, time.monotonic()
        elif time.monotonic() - last_change > 5:
            break
        await asyncio.sleep(0.5)
    stop.set()
    await sampler
    cpu_wall = time.monotonic() - cpu_at
    cpu_server, cpu_bench = cpu_seconds(pid) - cpu_server, time.process_time() - cpu_bench
    latencies = []
    missing = 0
    clients_missing = set()
    for n, client in enumerate(clients):
        for row in written:
            if not client.may_see(row["kind"], row["user_id"]):
                continue
            got = client.received.get(row["marker"])
            if got is None:
                missing += 1
                clients_missing.add(n)
            else:
                latencies.append((got - row["at"]) * 1000)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "clients": clients_n,
        "clients_by_role": {"admin": sum(c.person["role"] == "admin" for c in clients),
                            "port_engineer": sum(c.person["role"] == "port_engineer" for c in clients),
                            "staff": sum(c.person["role"] == "staff" for c in clients)},
        "open_seconds": round(open_seconds, 1),
        "rss_kb_before": rss_before, "rss_kb_after": rss_after, "server_threads_idle": threads_after,
        "kb_per_idle_client": round((rss_after - rss_before) / max(1, clients_n - 10), 1),
        "connections_idle": idle_connections,
        "connections_max_during_writes": max(samples, default=idle_connections),
        "rows_written": len(written), "write_rate_per_s": rate, "write_seconds": seconds,
        "deliveries": len(latencies), "missing": missing, "clients_missing_rows": len(clients_missing),
        "forbidden_rows_received": sum(c.forbidden for c in clients),
        "p50_ms": round(percentile(latencies, 0.5), 1), "p95_ms": round(percentile(latencies, 0.95), 1),
        "max_ms": round(max(latencies, default=math.nan), 1),
        "cpu_during_writes": {"wall_s": round(cpu_wall, 1), "server_s": round(cpu_server, 1),
                              "bench_process_s": round(cpu_bench, 1)},
    }


def run(clients_n: int, rate: float, seconds: float) -> dict | None:
    with postgresql_database(DB_ENV, DB_DEFAULT) as url:
        if url is None:
            return None
        setup_django(url)  # migrates
        from django.db import connection

        people = make_users()
        connection.close()
        db_name = url.rsplit("/", 1)[1]
        port = free_port()
        env = {**os.environ, "DATABASE_URL": url + f"?application_name={APP_NAME}"}
        # BENCH_STREAM_PROFILE=out.html (or .txt): the server runs under pyinstrument (async-aware; the
        # report's format from the extension), sampling every 2 ms; written when the server exits, so
        # the server is given a bounded graceful shutdown and time to write it
        profile = os.environ.get("BENCH_STREAM_PROFILE")
        runner = ["-m", "pyinstrument", "-i", "0.002", "-o", profile] if profile else []
        proc = subprocess.Popen([sys.executable, *runner, "-m", "uvicorn", "marine_center.asgi:application",
                                 "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
                                 "--workers", "1", "--backlog", "4096", "--timeout-graceful-shutdown", "5",
                                 *SERVER_ARGS],
                                cwd=ROOT, env=env)
        admin = admin_connection()
        try:
            if not wait_for_port(port, proc):
                raise SystemExit("bench.stream: the server did not start")
            return asyncio.run(measure(port, people, clients_n, rate, seconds, proc.pid, admin, db_name))
        finally:
            # under pyinstrument, SIGINT: uvicorn stops, then raises it again as KeyboardInterrupt, which
            # pyinstrument catches before writing its report (a SIGTERM raised again kills it unwritten)
            proc.send_signal(signal.SIGINT if profile else signal.SIGTERM)
            try:
                proc.wait(timeout=120 if profile else 15)
            except subprocess.TimeoutExpired:
                log("bench.stream: the server did not stop in time; killed" + (" (no profile)" if profile else ""))
                proc.kill()
            admin.close()


def main(argv=None) -> int:
    clients_n = int(os.environ.get("BENCH_STREAM_CLIENTS", 1000))
    rate = float(os.environ.get("BENCH_STREAM_RATE", 50))
    seconds = float(os.environ.get("BENCH_STREAM_SECONDS", 20))
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * clients_n + 256)), hard))
    load_start = os.getloadavg()[0]
    result = run(clients_n, rate, seconds)
    if result is None:  # PostgreSQL unreachable (said on stderr)
        return 0
    result["meta"] = {"when": datetime.now(UTC).isoformat(timespec="seconds"), "python": platform.python_version(),
                      "cpus": os.cpu_count(), "load_average_1m_start": round(load_start, 2),
                      "load_average_1m_end": round(os.getloadavg()[0], 2), "server": f"one uvicorn worker ({server_kind()})"}
    result["verdicts"] = {
        "connections_le_2": result["connections_max_during_writes"] <= TARGET_CONNECTIONS,
        "delivery_p95_le_500ms": result["p95_ms"] <= TARGET_P95_MS,
        "kb_per_idle_client_le_50": result["kb_per_idle_client"] <= TARGET_KB_PER_CLIENT,
        "no_forbidden_row": result["forbidden_rows_received"] == 0,
        "no_missing_row": result["missing"] == 0,
    }
    print(f"stream: {result['clients']} clients ({result['clients_by_role']}) on one uvicorn worker, "
          f"{result['write_rate_per_s']:g} writes/s for {result['write_seconds']:g} s")
    print(f"  database connections of the server: idle {result['connections_idle']}, during writes at most "
          f"{result['connections_max_during_writes']} (target <= 2)")
    print(f"  delivery commit -> client over {result['deliveries']:,} deliveries: p50 {result['p50_ms']} ms, "
          f"p95 {result['p95_ms']} ms, max {result['max_ms']} ms (target p95 <= 500 ms); missing {result['missing']}")
    cpu = result["cpu_during_writes"]
    print(f"  CPU while writing and delivering ({cpu['wall_s']} s): server {cpu['server_s']} s, "
          f"this process (clients and writer) {cpu['bench_process_s']} s")
    print(f"  memory per idle client {result['kb_per_idle_client']} KB (target <= 50 KB); rows to a client that "
          f"may not see them: {result['forbidden_rows_received']}")
    print("  verdicts: " + ", ".join(f"{k}={'yes' if v else 'NO'}" for k, v in result["verdicts"].items()))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(f"written: {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
