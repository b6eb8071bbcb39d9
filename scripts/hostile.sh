#!/usr/bin/env bash
# Issue 21's attacks, run against release builds on loopback, with bounded figures printed:
#
#   1. PNG bombs (a few hundred bytes, extreme proportions) against `rx-barcode decode`:
#      time, peak memory, exit status of each;
#   2. a flood of requests with distinct made-up methods, then the size of /metrics and the
#      server's memory; /metrics on the API listener;
#   3. slow-body connections from one organisation while another organisation's requests are
#      counted: that organisation's 503 share;
#   4. concurrent token.png?dpi=2400 requests: the server's peak memory (VmHWM from /proc);
#   5. five organisations failing 25 lookups each from one address, then a sixth organisation's
#      first lookup.
#
# Each server scenario starts a fresh `prescrypt serve --dev` on a temporary database. Needs
# cargo, python3 (standard library only) and Linux /proc. Usage: scripts/hostile.sh
# (SLOW_SECONDS=N sets how long the slow-body attack lasts, default 33).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo); load: $(cut -d' ' -f1-3 /proc/loadavg)"
cargo build --release --locked -p prescrypt --bin prescrypt -p prescrypt-barcode --bin rx-barcode
target_dir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# Copies, so that another build in the same target directory cannot swap them mid-run.
mkdir "$work/bin"
cp "$target_dir/release/prescrypt" "$target_dir/release/rx-barcode" "$work/bin/"

HOSTILE_BIN="$work/bin" HOSTILE_WORK="$work" SLOW_SECONDS="${SLOW_SECONDS:-33}" \
    python3 - <<'PYTHON'
import os, socket, struct, subprocess, sys, threading, time, urllib.request, urllib.error, zlib, json

BIN = os.environ["HOSTILE_BIN"]
WORK = os.environ["HOSTILE_WORK"]
SLOW_SECONDS = int(os.environ["SLOW_SECONDS"])
PRESCRYPT = os.path.join(BIN, "prescrypt")
RX_BARCODE = os.path.join(BIN, "rx-barcode")


def mib(kib):
    return f"{kib / 1024:.0f} MiB"


def run_measured(argv, timeout):
    """Runs argv to completion (killed after timeout s): seconds, peak RSS (KiB), status, output tail."""
    started = time.monotonic()
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    killer = threading.Timer(timeout, child.kill)
    killer.start()
    err = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    killer.cancel()
    seconds = time.monotonic() - started
    if os.WIFSIGNALED(status):
        outcome = f"killed by signal {os.WTERMSIG(status)}"
    else:
        outcome = f"exit {os.WEXITSTATUS(status)}"
    tail = err.decode(errors="replace").strip().splitlines()[-1:] or [""]
    return seconds, usage.ru_maxrss, outcome, tail[0]


def png(width, height):
    """An all-zero 8-bit greyscale PNG."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    packer = zlib.compressobj(9)
    row = b"\0" * (width + 1)
    body = bytearray()
    for start in range(0, height, 65536):
        body += packer.compress(row * min(65536, height - start))
    body += packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", bytes(body)) + chunk(b"IEND", b"")


def png_bombs():
    print("\n## 1. PNG bombs against rx-barcode decode (killed after 120 s)")
    print("| image | file size | time | peak memory | result |")
    print("|---|---|---|---|---|")
    for width, height in [(100000, 1), (250000, 1), (500000, 1), (40000000, 1), (1, 40000000)]:
        path = os.path.join(WORK, f"bomb-{width}x{height}.png")
        with open(path, "wb") as file:
            file.write(png(width, height))
        seconds, peak, outcome, tail = run_measured([RX_BARCODE, "decode", path], 120)
        try:
            tail = json.loads(tail).get("error") or f"{len(json.loads(tail)['codes'])} codes"
        except ValueError:
            tail = tail[:110]
        print(f"| {width}×{height} | {os.path.getsize(path)} B | {seconds:.2f} s | {mib(peak)} | {outcome}: {tail} |")


class Server:
    """`prescrypt serve --dev` on a fresh database, API and metrics on loopback port 0."""

    count = 0

    def __init__(self, *flags):
        Server.count += 1
        home = os.path.join(WORK, f"server{Server.count}")
        os.makedirs(home)
        self.keys = os.path.join(home, "keys")
        self.process = subprocess.Popen(
            [PRESCRYPT, "serve", "--dev", "--bind", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
             "--database-url", os.path.join(home, "db.sqlite"), "--keys-dir", self.keys, *flags],
            stdout=subprocess.PIPE, stderr=open(os.path.join(home, "log"), "wb"),
            env={**os.environ, "RUST_LOG": "warn"})
        self.api = self.process.stdout.readline().decode().removeprefix("listening on ").strip()
        self.metrics = self.process.stdout.readline().decode().removeprefix("metrics on ").strip()
        host, port = self.api.removeprefix("http://").split(":")
        self.address = (host, int(port))

    def token(self, role, org, sub):
        return subprocess.run([PRESCRYPT, "token", "--role", role, "--org", org, "--sub", sub,
                               "--keys-dir", self.keys], check=True, capture_output=True,
                              text=True).stdout.strip()

    def status(self, field):
        with open(f"/proc/{self.process.pid}/status") as file:
            for line in file:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        return 0

    def request(self, method, path, bearer=None, body=None, base=None, timeout=60):
        request = urllib.request.Request((base or self.api) + path, method=method,
                                         data=None if body is None else json.dumps(body).encode())
        if bearer:
            request.add_header("Authorization", "Bearer " + bearer)
        if body is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()
        except (urllib.error.URLError, OSError) as error:
            return 0, str(error).encode()

    def stop(self):
        self.process.terminate()
        self.process.wait()


def prescription():
    return {"patient": {"nhs_number": "9434765919", "name": "Jane Smith", "birth_date": "1970-01-31"},
            "items": [{"code": "39720311000001101", "display": "Paracetamol 500mg tablets",
                       "quantity": 32, "unit": "tablet", "dosage": "2 four times a day"}]}


def method_flood():
    print("\n## 2. Distinct made-up methods, then /metrics")
    server = Server()
    before = server.status("VmRSS")
    for n in range(2000):
        method = f"X{n:04d}" + "M" * 200
        with socket.create_connection(server.address) as conn:
            conn.sendall(f"{method} /api/v1/prescriptions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            while conn.recv(65536):
                pass
    started = time.monotonic()
    status, text = server.request("GET", "/metrics", base=server.metrics)
    scrape = time.monotonic() - started
    on_api, _ = server.request("GET", "/metrics")
    print(f"- 2,000 requests with distinct 205-character methods: server {mib(before)} before, "
          f"{mib(server.status('VmRSS'))} after, peak {mib(server.status('VmHWM'))}")
    other = text.count(b'method="other"')
    made_up = text.count(b"MMMMM")
    print(f"- /metrics on the metrics listener: {status}, {len(text):,} bytes, {scrape * 1000:.0f} ms; "
          f"series with method=\"other\": {other}; made-up methods in it: {made_up}")
    print(f"- /metrics on the API listener: {on_api}")
    server.stop()


def slow_bodies():
    print(f"\n## 3. Slow bodies: 260 connections of one organisation for {SLOW_SECONDS} s, "
          "another organisation's requests meanwhile")
    server = Server()
    attacker = server.token("pharmacist", "FA565", "P1")
    bystander = server.token("pharmacist", "FCG71", "P2")
    head = (f"POST /api/v1/release HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {attacker}\r\n"
            "Content-Type: application/json\r\nContent-Length: 60000\r\n\r\n").encode()
    stop = time.monotonic() + SLOW_SECONDS
    answers = {}
    lock = threading.Lock()

    def trickle():
        """One connection at a time, one byte a second; reconnects when answered."""
        while time.monotonic() < stop:
            try:
                conn = socket.create_connection(server.address)
                conn.sendall(head)
                conn.settimeout(1.0)
                reply = b""
                while time.monotonic() < stop:
                    try:
                        data = conn.recv(4096)
                        if not data:
                            break
                        reply += data
                    except socket.timeout:
                        conn.sendall(b" ")
                conn.close()
                status = reply[9:12].decode() if reply.startswith(b"HTTP/1.1 ") else "closed"
            except OSError:
                status = "error"
            with lock:
                answers[status] = answers.get(status, 0) + 1

    threads = [threading.Thread(target=trickle) for _ in range(260)]
    for thread in threads:
        thread.start()
    time.sleep(1)
    counts = {}
    while time.monotonic() < stop:
        status, _ = server.request("GET", "/api/v1/audit/checkpoints", bystander, timeout=10)
        counts[status] = counts.get(status, 0) + 1
        time.sleep(0.1)
    for thread in threads:
        thread.join()
    total = sum(counts.values())
    print(f"- the other organisation: {total} requests, {counts}; 503 share "
          f"{100 * counts.get(503, 0) / max(total, 1):.1f} %")
    print(f"- the slow connections' answers: {answers}")
    print(f"- server peak memory: {mib(server.status('VmHWM'))}")
    server.stop()


def renders(concurrent):
    print(f"\n## 4. {concurrent} concurrent token.png?dpi=2400 requests")
    server = Server()
    prescriber = server.token("prescriber", "A83008", "G1234567")
    status, body = server.request("POST", "/api/v1/prescriptions", prescriber, prescription())
    assert status == 201, body
    path = f"/api/v1/prescriptions/{json.loads(body)['id']}/token.png?dpi=2400"
    before = server.status("VmHWM")
    statuses = {}
    lock = threading.Lock()

    def fetch():
        status, _ = server.request("GET", path, prescriber, timeout=120)
        with lock:
            statuses[status] = statuses.get(status, 0) + 1

    started = time.monotonic()
    threads = [threading.Thread(target=fetch) for _ in range(concurrent)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(f"- answers {statuses} in {time.monotonic() - started:.1f} s; server peak memory "
          f"{mib(server.status('VmHWM'))} ({mib(before)} before)")
    server.stop()


def shared_address():
    print("\n## 5. Five organisations × 25 failed lookups from one address, then a sixth organisation")
    server = Server("--throttle-org-failures", "30", "--throttle-addr-failures", "100")
    statuses = {}
    for org in range(5):
        bearer = server.token("pharmacist", f"FQ{org:03d}", "P3")
        for n in range(25):
            status, _ = server.request("GET", f"/api/v1/prescriptions/NOT-AN-ID-{n}", bearer)
            statuses[status] = statuses.get(status, 0) + 1
    sixth = server.token("pharmacist", "FCG71", "P2")
    status, body = server.request("GET", "/api/v1/prescriptions/NOT-AN-ID-0", sixth)
    print(f"- the five organisations' 125 lookups: {statuses}")
    print(f"- the sixth organisation's first lookup: {status} {json.loads(body).get('code')} "
          "(429 too-many-requests would be the lock-out)")
    server.stop()


png_bombs()
method_flood()
slow_bodies()
renders(64)
renders(200)
shared_address()
PYTHON
echo
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
