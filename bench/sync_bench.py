#!/usr/bin/env python3
"""The sync benchmark (issue 4): AWS calls against the minimum necessary, rate-limit use, and
the delay from a SCIM change to its AWS call — the release binary against the moto emulator
(tests/aws/moto_server.py), on a fresh SQLite database.

    bench/sync_bench.sh [--users 10000 --groups 1000 --memberships 50000]

Phases, each printed as it ends:
1. initial sync of N users, G groups, M memberships: writes per operation vs N, G, M;
2. a no-op sync: no AWS call at all; the same with --full: paginated reads only;
3. after 1% of users and of memberships changed: writes vs the changes made;
4. a slice of --slice CreateUser calls with max_requests_per_second = 20 through a proxy that
   answers ThrottlingException above 20 requests/s: wall time against calls/20, throttles;
5. `scimbridge serve` with debounce_seconds = --debounce: time from a SCIM PATCH adding a member
   to the CreateGroupMembership reaching the emulator.
"""

import argparse
import collections
import http.server
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import requests

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
           AWS_REGION="us-east-1", RUST_LOG="warn")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"nothing listens on {port}")


class ThrottlingProxy(http.server.ThreadingHTTPServer):
    """Forwards to the emulator; ThrottlingException above `limit` requests in any second.
    Records the time of every CreateGroupMembership it forwards."""

    def __init__(self, upstream, limit=None):
        self.upstream, self.limit = upstream, limit
        self.window = collections.deque()
        self.lock = threading.Lock()
        self.throttled = 0
        self.forwarded = 0
        self.membership_calls = []
        super().__init__(("127.0.0.1", 0), ProxyHandler)


class ProxyHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        srv = self.server
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        now = time.monotonic()
        with srv.lock:
            while srv.window and now - srv.window[0] >= 1.0:
                srv.window.popleft()
            if srv.limit is not None and len(srv.window) >= srv.limit:
                srv.throttled += 1
                payload = json.dumps({"__type": "ThrottlingException", "Message": "Rate exceeded",
                                      "RetryAfterSeconds": 1}).encode()
                self.send_response(400)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return
            srv.window.append(now)
            srv.forwarded += 1
        op = self.headers.get("X-Amz-Target", "").rsplit(".", 1)[-1]
        if op == "CreateGroupMembership":
            srv.membership_calls.append(time.time())
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
        r = requests.post(srv.upstream + self.path, data=body, headers=headers)
        payload = self.rewrite(op, body, r.content) if r.status_code == 200 else r.content
        self.send_response(r.status_code)
        for k, v in r.headers.items():
            if k.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def rewrite(self, op, body, payload):
        """The body of a successful answer as the bridge gets it (a subclass may change it)."""
        return payload


def start_proxy(upstream, limit=None):
    proxy = ThrottlingProxy(upstream, limit)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    return proxy


class Bridge:
    def __init__(self, binary, workdir):
        self.binary, self.workdir = binary, workdir
        self.db = f"sqlite://{workdir}/bench.db"
        self.run(["migrate"])
        self.token = self.run(["token", "create", "--source", "bench"]).strip().splitlines()[-1]
        self.port = free_port()
        self.server = subprocess.Popen(
            [binary, "serve", "--listen", f"127.0.0.1:{self.port}"], env=self.env(),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port)
        self.base = f"http://127.0.0.1:{self.port}/scim/v2"
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {self.token}"

    def env(self, aws=False):
        env = dict(ENV if aws else {k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
                   DATABASE_URL=self.db, RUST_LOG="warn")
        env.pop("SCIMBRIDGE_CONFIG", None)
        return env

    def run(self, args):
        return subprocess.run([self.binary, *args], env=self.env(), check=True,
                              capture_output=True, text=True).stdout

    def sync(self, endpoint, rps, *extra):
        config = os.path.join(self.workdir, f"sync-{rps}.toml")
        with open(config, "w") as f:
            f.write(f'[aws]\nregion = "us-east-1"\nendpoint_url = "{endpoint}"\n'
                    f"max_requests_per_second = {rps}\n[sync]\nmax_delete_fraction = 1.0\n")
        start = time.time()
        out = subprocess.run([self.binary, "--config", config, "sync", "--json", *extra], env=self.env(True),
                             capture_output=True, text=True)
        report = json.loads(out.stdout)
        report["seconds"] = time.time() - start
        return report

    def bulk(self, ops):
        for i in range(0, len(ops), 100):
            r = self.http.post(self.base + "/Bulk", json={
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                "Operations": ops[i:i + 100]})
            r.raise_for_status()
            for o in r.json()["Operations"]:
                if not str(o["status"]).startswith("2"):
                    sys.exit(f"bulk failed: {o}")
            yield from r.json()["Operations"]

    def stop(self):
        self.server.terminate()
        self.server.wait()


def writes(report):
    return {op: n for op, n in report["aws_calls"].items()
            if not op.startswith(("List", "Get", "Describe"))}


def line(label, report, minimum):
    w = writes(report)
    total_w = sum(w.values())
    reads = sum(report["aws_calls"].values()) - total_w
    ratio = total_w / minimum if minimum else float("nan")
    print(f"{label}: {report['seconds']:.1f} s, writes {total_w} vs minimum {minimum} "
          f"({ratio:.3f}x), reads {reads}, throttles {report['throttles']}, status {report['status']}")
    print(f"    writes by operation: {json.dumps(w, sort_keys=True)}")
    return {"seconds": report["seconds"], "writes": w, "minimum": minimum, "reads": reads,
            "throttles": report["throttles"], "status": report["status"]}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--binary", default=os.path.join(
        os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target")), "release", "scimbridge"))
    p.add_argument("--users", type=int, default=10000)
    p.add_argument("--groups", type=int, default=1000)
    p.add_argument("--memberships", type=int, default=50000)
    p.add_argument("--slice", type=int, default=1000, help="calls in the rate-limited slice")
    p.add_argument("--debounce", type=int, default=5)
    args = p.parse_args()
    results = {}
    random.seed(7)

    moto_port = free_port()
    moto = subprocess.Popen([sys.executable, os.path.join(REPO, "tests/aws/moto_server.py"), str(moto_port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(moto_port)
    moto_url = f"http://127.0.0.1:{moto_port}"
    workdir = tempfile.mkdtemp(prefix="scimbridge-syncbench-")
    bridge = Bridge(args.binary, workdir)
    try:
        # --- load ------------------------------------------------------------------------
        t = time.time()
        users = [o["location"].rsplit("/", 1)[1] for o in bridge.bulk([
            {"method": "POST", "path": "/Users", "bulkId": f"u{i}", "data": {
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": f"user{i}@example.com", "displayName": f"User {i}",
                "name": {"givenName": "User", "familyName": str(i)},
                "emails": [{"value": f"user{i}@example.com", "type": "work", "primary": True}]}}
            for i in range(args.users)])]
        pairs = set()
        while len(pairs) < args.memberships:
            pairs.add((random.randrange(args.groups), random.randrange(args.users)))
        members = collections.defaultdict(list)
        for g, u in pairs:
            members[g].append(users[u])
        groups = [o["location"].rsplit("/", 1)[1] for o in bridge.bulk([
            {"method": "POST", "path": "/Groups", "bulkId": f"g{g}", "data": {
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": f"Group {g}", "members": [{"value": m} for m in members[g]]}}
            for g in range(args.groups)])]
        print(f"loaded {args.users} users, {args.groups} groups, {len(pairs)} memberships "
              f"in {time.time() - t:.0f} s")

        # --- 1. initial, 2. no-op --------------------------------------------------------
        results["initial"] = line("initial sync", bridge.sync(moto_url, 100000),
                                  args.users + args.groups + len(pairs))
        results["noop"] = line("no-op sync", bridge.sync(moto_url, 100000), 0)
        results["noop_full"] = line("no-op full sync (--full)", bridge.sync(moto_url, 100000, "--full"), 0)

        # --- 3. 1% changed ---------------------------------------------------------------
        changed_users = random.sample(users, max(1, args.users // 100))
        for uid in changed_users:
            bridge.http.patch(f"{bridge.base}/Users/{uid}", json={
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "title", "value": "Changed"}]}).raise_for_status()
        moved = random.sample(sorted(pairs), max(1, len(pairs) // 100))
        for g, u in moved:
            bridge.http.patch(f"{bridge.base}/Groups/{groups[g]}", json={
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "remove", "path": f'members[value eq "{users[u]}"]'}]}).raise_for_status()
        results["one_percent"] = line("1% changed", bridge.sync(moto_url, 100000),
                                      len(changed_users) + len(moved))

        # --- 4. change -> AWS latency while a full reconcile of the whole directory runs ---
        # `serve` on the loaded database at 20 requests/s: its start-up full run reads every
        # group's memberships (about a minute); membership changes made meanwhile are timed.
        proxy = start_proxy(moto_url)
        serve_config = os.path.join(bridge.workdir, "serve-big.toml")
        with open(serve_config, "w") as f:
            f.write(f'[aws]\nregion = "us-east-1"\nendpoint_url = "http://127.0.0.1:{proxy.server_address[1]}"\n'
                    f"max_requests_per_second = 20\n[sync]\nenabled = true\ndebounce_seconds = {args.debounce}\n")
        bridge.server.terminate()
        bridge.server.wait()
        started = time.time()
        bridge.server = subprocess.Popen([args.binary, "--config", serve_config, "serve", "--listen",
                                          f"127.0.0.1:{bridge.port}"], env=bridge.env(True),
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(bridge.port)
        time.sleep(3)
        during = []
        outsider = users[0]
        for g in random.sample(range(args.groups), 2):
            if (g, 0) in pairs:
                continue
            before = len(proxy.membership_calls)
            t0 = time.time()
            bridge.http.patch(f"{bridge.base}/Groups/{groups[g]}", json={
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "add", "path": "members", "value": [{"value": outsider}]}]}).raise_for_status()
            while len(proxy.membership_calls) == before and time.time() - t0 < 120:
                time.sleep(0.05)
            during.append(proxy.membership_calls[-1] - t0 if len(proxy.membership_calls) > before else float("inf"))
        reads_so_far = proxy.forwarded
        print(f"SCIM change -> AWS membership call during the start-up full run of the whole directory "
              f"(at 20 requests/s; {reads_so_far} calls into it, started {time.time() - started:.0f} s ago): "
              f"{', '.join(f'{d:.2f} s' for d in during)} (target <= debounce {args.debounce} + 2 s)")
        results["change_latency_during_full_run_seconds"] = during
        proxy.shutdown()

        # --- 5. rate-limited slice ------------------------------------------------------
        bridge.stop()
        bridge = Bridge(args.binary, tempfile.mkdtemp(prefix="scimbridge-syncbench-"))
        list(bridge.bulk([{"method": "POST", "path": "/Users", "bulkId": f"s{i}", "data": {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": f"slice{i}@example.com",
            "displayName": f"Slice {i}", "name": {"givenName": "S", "familyName": str(i)}}}
            for i in range(args.slice)]))
        proxy = start_proxy(moto_url, limit=20)
        report = bridge.sync(f"http://127.0.0.1:{proxy.server_address[1]}", 20)
        calls = sum(report["aws_calls"].values())
        ideal = calls / 20
        print(f"rate-limited slice: {calls} calls in {report['seconds']:.1f} s vs {ideal:.1f} s at 20/s "
              f"(utilisation {ideal / report['seconds']:.3f}), throttles {report['throttles']} "
              f"(proxy refused {proxy.throttled})")
        results["slice"] = {"calls": calls, "seconds": report["seconds"], "utilisation": ideal / report["seconds"],
                            "throttles": report["throttles"], "proxy_throttled": proxy.throttled}
        proxy.shutdown()

        # --- 6. change -> AWS latency (small directory, steady state) -------------------
        bridge.stop()
        proxy = start_proxy(moto_url)
        bridge = Bridge(args.binary, tempfile.mkdtemp(prefix="scimbridge-syncbench-"))
        config = os.path.join(bridge.workdir, "serve.toml")
        with open(config, "w") as f:
            f.write(f'[aws]\nregion = "us-east-1"\nendpoint_url = "http://127.0.0.1:{proxy.server_address[1]}"\n'
                    f"[sync]\nenabled = true\ndebounce_seconds = {args.debounce}\n")
        bridge.server.terminate()
        bridge.server.wait()
        bridge.server = subprocess.Popen([args.binary, "--config", config, "serve", "--listen",
                                          f"127.0.0.1:{bridge.port}"], env=bridge.env(True),
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(bridge.port)
        uid = bridge.http.post(bridge.base + "/Users", json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "pim@example.com"}).json()["id"]
        gid = bridge.http.post(bridge.base + "/Groups", json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "PIM"}).json()["id"]
        time.sleep(args.debounce + 5)  # both pushed
        delays = []
        for _ in range(3):
            before = len(proxy.membership_calls)
            t0 = time.time()
            bridge.http.patch(f"{bridge.base}/Groups/{gid}", json={
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "add", "path": "members", "value": [{"value": uid}]}]}).raise_for_status()
            while len(proxy.membership_calls) == before and time.time() - t0 < 60:
                time.sleep(0.05)
            delays.append(proxy.membership_calls[-1] - t0 if len(proxy.membership_calls) > before else float("inf"))
            bridge.http.patch(f"{bridge.base}/Groups/{gid}", json={
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "remove", "path": f'members[value eq "{uid}"]'}]}).raise_for_status()
            time.sleep(args.debounce + 3)
        print(f"SCIM change -> AWS membership call: {', '.join(f'{d:.2f} s' for d in delays)} "
              f"(target <= debounce {args.debounce} + 2 s)")
        results["change_latency_seconds"] = delays
        proxy.shutdown()
    finally:
        bridge.stop()
        moto.terminate()
    os.makedirs(os.path.join(REPO, "bench/results"), exist_ok=True)
    out = os.path.join(REPO, "bench/results", time.strftime("sync-%Y%m%d-%H%M%S.json"))
    with open(out, "w") as f:
        json.dump({"args": vars(args), "results": results}, f, indent=2)
    print(f"figures written to {out}")


if __name__ == "__main__":
    main()
