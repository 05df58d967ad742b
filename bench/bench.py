#!/usr/bin/env python3
"""The SCIM benchmark: scimbridge on PostgreSQL vs. the scim2-server peer vs. PostgreSQL's ceiling.

Run through bench/run.sh, which builds the release binary, installs wrk and the peer, and starts a
throwaway PostgreSQL (DATABASE_URL). See bench/README.md. Python 3.11 standard library only.

Steps:
  1. scimbridge (release binary, PostgreSQL): load USERS users and GROUPS groups (one of BIG
     members, the others of 5) through /Bulk, then measure each scenario with wrk.
  2. scim2-server (in memory): load the same data through its /Bulk, measure the same scenarios.
  3. pgbench on a separate database of the same server: the insert transaction our POST does
     (users row + change_journal row) and the indexed case-insensitive point select.
  4. Print the table, the ratios, the fractions and the CPU split; write the JSON file.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import glob
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
SCENARIOS = ["filter", "get", "list", "patch", "post", "floor"]
LABELS = {
    "post": "POST /Users",
    "get": "GET /Users/{id}",
    "filter": 'GET filter=userName eq "…"',
    "patch": "PATCH big group ±1 member",
    "list": "GET /Users page of 100",
    "floor": "GET /ServiceProviderConfig",
}
# our/peer throughput targets
PEER_TARGETS = {"post": 5.0, "filter": 50.0, "patch": 50.0}
# fraction of PostgreSQL's ceiling: scenario -> pgbench script
CEILING_OF = {"post": "insert", "filter": "select"}
# pgbench scripts: the targets' ceilings, then the statement our filtered GET itself runs
PGBENCH_SCRIPTS = ["insert", "select", "select_ours"]
CEILING_TARGET = 0.5

CORE_URN = "urn:ietf:params:scim:schemas:core:2.0:User"
ENT_URN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP_URN = "urn:ietf:params:scim:schemas:core:2.0:Group"
BULK_URN = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
PATCH_URN = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ---------------------------------------------------------------- data


def user_name(n: int) -> str:
    return f"user{n:06d}@bench.example.com"


def user_doc(name: str, n: int) -> dict:
    """The user every loader and every POST sends (the same shape as bench/scim.lua's)."""
    return {
        "schemas": [CORE_URN, ENT_URN],
        "userName": name,
        "externalId": f"ext-{name}",
        "name": {"givenName": "Given", "familyName": f"Family{n}", "formatted": f"Given Family{n}"},
        "displayName": f"Given Family{n}",
        "title": "Engineer",
        "active": True,
        "emails": [{"value": name, "type": "work", "primary": True}],
        ENT_URN: {"employeeNumber": str(n), "department": "Engineering", "costCenter": "CC-42"},
    }


def group_doc(name: str, member_ids: list[str]) -> dict:
    return {
        "schemas": [GROUP_URN],
        "displayName": name,
        "members": [{"value": i} for i in member_ids],
    }


# ---------------------------------------------------------------- HTTP


class Client:
    """One SCIM server: base URL, path prefix, token. Keeps one connection per thread."""

    def __init__(self, name: str, port: int, prefix: str, token: str | None):
        self.name, self.port, self.prefix, self.token = name, port, prefix, token

    def request(self, method: str, path: str, body=None, timeout: float = 600.0):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        headers = {"Accept": "application/scim+json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/scim+json"
        try:
            conn.request(method, self.prefix + path, data, headers)
            resp = conn.getresponse()
            raw = resp.read()
        finally:
            conn.close()
        parsed = None
        if raw:
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = raw[:500]
        return resp.status, parsed

    def bulk_post(self, kind: str, docs: list[dict]) -> list[str]:
        """POSTs docs through /Bulk; returns the new ids in order (fails on any error)."""
        ops = [
            {"method": "POST", "path": f"/{kind}", "bulkId": f"b{i}", "data": d}
            for i, d in enumerate(docs)
        ]
        status, body = self.request("POST", "/Bulk", {"schemas": [BULK_URN], "Operations": ops})
        if status != 200:
            raise RuntimeError(f"{self.name}: Bulk answered {status}: {str(body)[:500]}")
        by_bulk_id = {}
        for op in body["Operations"]:
            st = int(op.get("status", 0) if not isinstance(op.get("status"), dict)
                     else op["status"].get("code", 0))
            if st != 201:
                raise RuntimeError(f"{self.name}: Bulk operation failed: {json.dumps(op)[:500]}")
            by_bulk_id[op["bulkId"]] = op["location"].rstrip("/").rsplit("/", 1)[1]
        return [by_bulk_id[f"b{i}"] for i in range(len(docs))]


def wait_http(port: int, path: str, proc: subprocess.Popen, what: str, timeout=120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} while starting")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            resp = conn.getresponse()
            resp.read()
            conn.close()
            if resp.status < 500:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not answer on port {port} within {timeout}s")


# ---------------------------------------------------------------- CPU accounting

CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_stat(pid: int):
    """(comm, ppid, utime+stime, cutime+cstime) in clock ticks, or None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    comm = s[s.index("(") + 1 : s.rindex(")")]
    fields = s[s.rindex(")") + 2 :].split()
    # fields[0] is state (field 3); utime is field 14 -> index 11
    return comm, int(fields[1]), int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14])


def all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def find_postmaster(pg_port: int) -> int | None:
    candidates = []
    for pid in all_pids():
        st = proc_stat(pid)
        if not st or st[0] != "postgres":
            continue
        parent = proc_stat(st[1])
        if parent and parent[0] == "postgres":
            continue
        candidates.append(pid)
    for pid in candidates:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if str(pg_port).encode() in args or f"-p {pg_port}".encode() in b" ".join(args):
            return pid
    return candidates[0] if len(candidates) == 1 else None


def postgres_ticks(postmaster: int | None) -> int:
    """CPU ticks of the postmaster, its live children, and its reaped children."""
    total = 0
    if postmaster is None:  # unknown: every process called postgres
        for pid in all_pids():
            st = proc_stat(pid)
            if st and st[0] == "postgres":
                total += st[2]
        return total
    st = proc_stat(postmaster)
    if st:
        total += st[2] + st[3]
    for pid in all_pids():
        c = proc_stat(pid)
        if c and c[1] == postmaster:
            total += c[2]
    return total


def machine_ticks():
    """(total, idle + iowait, irq + softirq) ticks of all cores."""
    with open("/proc/stat") as f:
        parts = f.readline().split()[1:]
    vals = [int(x) for x in parts[:8]]
    return sum(vals), vals[3] + vals[4], vals[5] + vals[6]


def every_process() -> dict[int, tuple[str, int]]:
    out = {}
    for pid in all_pids():
        st = proc_stat(pid)
        if st:
            out[pid] = (st[0], st[2])
    return out


def listen_overflows() -> int:
    """The kernel's count of connections dropped because a listen queue was full."""
    with open("/proc/net/netstat") as f:
        lines = f.read().splitlines()
    for names, values in zip(lines[::2], lines[1::2]):
        if names.startswith("TcpExt:"):
            row = dict(zip(names.split()[1:], values.split()[1:]))
            return int(row.get("ListenOverflows", 0))
    return 0


def wait_idle(pid: int, what: str, max_wait: float = 1200.0) -> float:
    """Waits until a server has finished the requests wrk left behind (its CPU goes quiet).

    A server that queues requests behind a lock keeps working on the ones in flight when wrk
    stops; the next measurement must not pay for them. Returns the seconds waited.
    """
    t0 = time.time()
    quiet = 0
    prev = proc_stat(pid)
    while time.time() - t0 < max_wait:
        time.sleep(0.5)
        cur = proc_stat(pid)
        if not cur or not prev:
            break
        busy = (cur[2] - prev[2]) / CLK_TCK / 0.5
        quiet = quiet + 1 if busy < 0.05 else 0
        prev = cur
        if quiet >= 2:
            break
    waited = time.time() - t0
    if waited > 5:
        log(f"{what}: waited {waited:.0f}s for the requests left in flight to finish")
    return waited


class CpuMeter:
    """Before/after CPU of named processes and of the whole machine."""

    def __init__(self, postmaster: int | None):
        self.postmaster = postmaster

    def snapshot(self, pids: dict[str, int | None]):
        snap = {}
        for name, pid in pids.items():
            st = proc_stat(pid) if pid else None
            snap[name] = st[2] + st[3] if st else 0
        snap["postgres"] = postgres_ticks(self.postmaster)
        snap["_machine"] = machine_ticks()
        snap["_procs"] = every_process()
        snap["_pids"] = {pid for pid in pids.values() if pid} | ({self.postmaster} if self.postmaster else set())
        snap["_time"] = time.time()
        return snap

    @staticmethod
    def split(before, after, final_ticks: dict[str, int] | None = None) -> dict:
        """Percent of the machine's total CPU (all cores = 100%) per process group.

        `irq` is interrupt and softirq time (loopback networking), which no process is charged
        for; `other` is every other busy tick, with the busiest other processes named.
        """
        total0, idle0, irq0 = before["_machine"]
        total1, idle1, irq1 = after["_machine"]
        total = max(total1 - total0, 1)
        out = {}
        named = 0
        for name in before:
            if name.startswith("_"):
                continue
            end = (final_ticks or {}).get(name, after.get(name, 0))
            d = max(end - before[name], 0)
            named += d
            out[name] = round(100.0 * d / total, 1)
        irq = irq1 - irq0
        busy = total - (idle1 - idle0)
        out["irq"] = round(100.0 * irq / total, 1)
        out["other"] = round(100.0 * max(busy - named - irq, 0) / total, 1)
        out["idle"] = round(100.0 * (idle1 - idle0) / total, 1)
        out["cores_busy"] = round(os.cpu_count() * busy / total, 2)
        # the busiest processes outside the measured ones (by name), alive at the end
        ours = before["_pids"] | after["_pids"]
        others: dict[str, int] = {}
        for pid, (comm, ticks) in after["_procs"].items():
            if pid in ours or comm == "postgres" or comm == "wrk" or comm == "pgbench":
                continue
            prev = before["_procs"].get(pid)
            d = ticks - prev[1] if prev else ticks  # a new process: all of its ticks
            if comm.startswith("kworker"):
                comm = "kworker"  # their names change with the work they do
            if d > 0:
                others[comm] = others.get(comm, 0) + d
        top = sorted(others.items(), key=lambda kv: -kv[1])[:4]
        out["other_top"] = {k: round(100.0 * v / total, 1) for k, v in top}
        return out


# ---------------------------------------------------------------- wrk


def run_wrk(args, client: Client, scenario: str, duration: float, datafile: str, group_id: str,
            tag: str, offset: int, meter: CpuMeter | None, server_pid: int | None) -> dict:
    token = client.token or "-"
    cmd = [
        args.wrk, f"-t{args.threads}", f"-c{args.conns}", f"-d{int(duration)}s",
        f"--timeout", f"{args.timeout}s", "--latency", "-s", os.path.join(HERE, "scim.lua"),
        f"http://127.0.0.1:{client.port}", "--", scenario, token, client.prefix, datafile,
        group_id, tag, str(args.users if client.name == "scimbridge" else args.peer_users),
        str(offset),
    ]
    overflows = listen_overflows()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    before = meter.snapshot({"server": server_pid, "wrk": proc.pid}) if meter else None
    # wrk exits right after its run; read its CPU just before it does (it is our child, so
    # /proc still shows it as a zombie until wait(); use wait4 for its rusage instead).
    _, status, rusage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    after = meter.snapshot({"server": server_pid, "wrk": None}) if meter else None
    out = proc.stdout.read()
    err = proc.stderr.read()
    m = re.search(r"^WRKJSON (\{.*\})$", out, re.M)
    if proc.returncode != 0 or not m:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {err}\n{out}")
    r = json.loads(m.group(1))
    secs = r["duration_us"] / 1e6
    ok = r["requests"] - r["err_status"]
    res = {
        "requests": r["requests"],
        "non_2xx": r["err_status"],
        "socket_errors": {k[4:]: r[k] for k in ("err_connect", "err_read", "err_write", "err_timeout")},
        "seconds": round(secs, 2),
        "rps": round(ok / secs, 1),
        "rps_all": round(r["requests"] / secs, 1),
        "p50_ms": round(r["p50_us"] / 1000, 2),
        "p90_ms": round(r["p90_us"] / 1000, 2),
        "p99_ms": round(r["p99_us"] / 1000, 2),
        "max_ms": round(r["max_us"] / 1000, 2),
        "mean_ms": round(r["mean_us"] / 1000, 2),
        "listen_overflows": listen_overflows() - overflows,
    }
    if meter:
        wrk_ticks = int(round((rusage.ru_utime + rusage.ru_stime) * CLK_TCK))
        final = {"wrk": before["wrk"] + wrk_ticks}
        res["cpu"] = CpuMeter.split(before, after, final)
    return res


# ---------------------------------------------------------------- loading


def load_dataset(client: Client, n_users: int, n_groups: int, big: int, batch: int,
                 workers: int) -> dict:
    """Loads users and groups through /Bulk; returns ids (user ids in userName order)."""
    t0 = time.time()
    chunks = [list(range(i, min(i + batch, n_users))) for i in range(0, n_users, batch)]
    ids: list[str | None] = [None] * n_users
    done = 0

    def load_users(chunk):
        return chunk, client.bulk_post("Users", [user_doc(user_name(n), n) for n in chunk])

    with concurrent.futures.ThreadPoolExecutor(workers) as ex:
        for chunk, new_ids in ex.map(load_users, chunks):
            for n, i in zip(chunk, new_ids):
                ids[n] = i
            done += len(chunk)
            if done % (batch * 100) == 0 or done == n_users:
                log(f"{client.name}: {done}/{n_users} users ({time.time() - t0:.0f}s)")
    t_users = time.time() - t0

    t1 = time.time()
    big = min(big, n_users)
    status, body = client.request("POST", "/Groups", group_doc("big-group", ids[:big]))
    if status != 201:
        raise RuntimeError(f"{client.name}: creating the big group answered {status}: {str(body)[:300]}")
    big_id = body["id"]
    t_big = time.time() - t1
    log(f"{client.name}: big group of {big} members created in {t_big:.1f}s")

    rnd = random.Random(42)
    small = [
        group_doc(f"group-{g:05d}", [ids[rnd.randrange(n_users)] for _ in range(5)])
        for g in range(1, n_groups)
    ]
    # a small group names 5 random users; de-duplicate members
    for d in small:
        seen = []
        for m in d["members"]:
            if m not in seen:
                seen.append(m)
        d["members"] = seen
    gchunks = [small[i : i + batch] for i in range(0, len(small), batch)]
    t2 = time.time()
    with concurrent.futures.ThreadPoolExecutor(workers) as ex:
        list(ex.map(lambda c: client.bulk_post("Groups", c), gchunks))
    t_groups = time.time() - t2
    log(f"{client.name}: {len(small)} small groups in {t_groups:.0f}s")
    return {
        "user_ids": ids,
        "big_group_id": big_id,
        "load_seconds": {"users": round(t_users, 1), "big_group": round(t_big, 1),
                         "groups": round(t_groups, 1)},
    }


# ---------------------------------------------------------------- checks


def check_scenarios(client: Client, data: dict, n_users: int, big: int, tag: str) -> None:
    """One request of each scenario by hand, checking status and content (not just 2xx)."""
    ids = data["user_ids"]
    st, body = client.request("GET", f"/Users/{ids[7]}")
    assert st == 200 and body["id"] == ids[7], (client.name, "get", st, body)
    st, body = client.request("GET", "/Users?filter=" + urllib.parse.quote(f'userName eq "{user_name(123)}"'))
    assert st == 200 and body["totalResults"] == 1 and body["Resources"][0]["id"] == ids[123], (
        client.name, "filter", st, str(body)[:300])
    st, body = client.request("GET", f"/Users?startIndex={n_users // 2}&count=100")
    assert st == 200 and len(body["Resources"]) == 100, (client.name, "list", st, str(body)[:300])
    gid = data["big_group_id"]
    probe = ids[-1]
    add = {"schemas": [PATCH_URN], "Operations": [
        {"op": "add", "path": "members", "value": [{"value": probe}]}]}
    rem = {"schemas": [PATCH_URN], "Operations": [
        {"op": "remove", "path": f'members[value eq "{probe}"]'}]}
    st, body = client.request("PATCH", f"/Groups/{gid}", add)
    assert st in (200, 204), (client.name, "patch add", st, str(body)[:300])
    st, body = client.request("PATCH", f"/Groups/{gid}", rem)
    assert st in (200, 204), (client.name, "patch remove", st, str(body)[:300])
    st, body = client.request("GET", f"/Groups/{gid}?attributes=displayName")
    assert st == 200, (client.name, "group get", st)
    st, body = client.request("POST", "/Users", user_doc(f"check-{tag}@bench.example.com", 0))
    assert st == 201, (client.name, "post", st, str(body)[:300])
    st, body = client.request("GET", "/ServiceProviderConfig")
    assert st == 200 and "patch" in body, (client.name, "floor", st, str(body)[:300])


def count_members(client: Client, gid: str) -> int | None:
    st, body = client.request("GET", f"/Groups/{gid}")
    if st != 200:
        return None
    return len(body.get("members") or [])


# ---------------------------------------------------------------- measuring one server


def measure_server(args, client: Client, data: dict, server_pid: int, meter: CpuMeter,
                   workdir: str, checkpoint) -> dict:
    n_users = len(data["user_ids"])
    tag = f"{client.name[:4]}{int(time.time())}"
    ids_file = os.path.join(workdir, f"{client.name}-ids.txt")
    with open(ids_file, "w") as f:
        f.write("\n".join(data["user_ids"]) + "\n")
    big = min(args.big, n_users)
    outside_file = os.path.join(workdir, f"{client.name}-outside.txt")
    with open(outside_file, "w") as f:
        f.write("\n".join(data["user_ids"][big:]) + "\n")
    check_scenarios(client, data, n_users, big, tag)
    results = {}
    for sc in SCENARIOS:
        if sc not in args.scenarios:
            continue
        datafile = {"get": ids_file, "patch": outside_file}.get(sc, ids_file)
        log(f"{client.name}: {sc}: warm-up {args.warmup}s")
        if args.warmup > 0:
            run_wrk(args, client, sc, args.warmup, datafile, data["big_group_id"], tag + "w",
                    0, None, None)
            wait_idle(server_pid, f"{client.name}: {sc}: warm-up")
        checkpoint()
        log(f"{client.name}: {sc}: measuring {args.duration}s")
        r = run_wrk(args, client, sc, args.duration, datafile, data["big_group_id"], tag + "m",
                    5000, meter, server_pid)
        r["drain_seconds"] = round(wait_idle(server_pid, f"{client.name}: {sc}"), 1)
        log(f"{client.name}: {sc}: {r['rps']} req/s, p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, "
            f"non-2xx {r['non_2xx']}, socket errors {r['socket_errors']}, "
            f"listen overflows {r['listen_overflows']}")
        results[sc] = r
    if "patch" in results:
        results["patch"]["big_group_members_after"] = count_members(client, data["big_group_id"])
    return results


# ---------------------------------------------------------------- scimbridge


def run_ours(args, workdir: str, meter: CpuMeter, checkpoint) -> tuple[dict, dict]:
    env = dict(os.environ, DATABASE_URL=args.database_url)
    log("scimbridge: creating the database and a token")
    # Only serve and migrate create a database; token create needs one.
    subprocess.run([args.bin, "migrate"], env=env, capture_output=True, text=True, check=True)
    out = subprocess.run([args.bin, "token", "create", "--source", "bench"], env=env,
                         capture_output=True, text=True, check=True)
    token = out.stdout.strip().splitlines()[-1].strip()
    port = free_port()
    logf = open(os.path.join(workdir, "scimbridge.log"), "w")
    proc = subprocess.Popen([args.bin, "serve", "--listen", f"127.0.0.1:{port}"], env=env,
                            stdout=logf, stderr=logf)
    try:
        wait_http(port, "/readyz", proc, "scimbridge")
        client = Client("scimbridge", port, "/scim/v2", token)
        log(f"scimbridge: loading {args.users} users, {args.groups} groups (pid {proc.pid})")
        data = load_dataset(client, args.users, args.groups, args.big, 100, args.load_workers)
        checkpoint(vacuum=True)
        results = measure_server(args, client, data, proc.pid, meter, workdir, checkpoint)
        info = {"load_seconds": data["load_seconds"], "users": args.users, "groups": args.groups,
                "big_group_members": min(args.big, args.users)}
        return results, info
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        logf.close()


# ---------------------------------------------------------------- the peer


def run_peer(args, workdir: str, meter: CpuMeter) -> tuple[dict, dict]:
    token = "peer-bench-token"
    port = free_port()
    logf = open(os.path.join(workdir, "peer.log"), "w")
    proc = subprocess.Popen([args.peer_bin, "--port", str(port), "--bearer-token", token],
                            stdout=logf, stderr=logf)
    try:
        wait_http(port, "/v2/ServiceProviderConfig", proc, "scim2-server")
        client = Client("scim2-server", port, "/v2", token)
        log(f"scim2-server: loading {args.peer_users} users, {args.peer_groups} groups (pid {proc.pid})")
        # its Bulk takes 1,000 operations and 1 MiB: 500 users a request; one at a time (GIL)
        data = load_dataset(client, args.peer_users, args.peer_groups, args.big, 500, 1)
        results = measure_server(args, client, data, proc.pid, meter, workdir, lambda **_: None)
        info = {"load_seconds": data["load_seconds"], "users": args.peer_users,
                "groups": args.peer_groups, "big_group_members": min(args.big, args.peer_users)}
        return results, info
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        logf.close()


# ---------------------------------------------------------------- pgbench ceiling


def psql(url: str, sql: str, *extra: str) -> str:
    out = subprocess.run(["psql", "-X", "-v", "ON_ERROR_STOP=1", "-q", "-At", url, *extra],
                         input=sql, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"psql failed: {out.stderr}")
    return out.stdout


def db_url(base: str, dbname: str) -> str:
    p = urllib.parse.urlsplit(base)
    return urllib.parse.urlunsplit((p.scheme, p.netloc, "/" + dbname, p.query, p.fragment))


def run_pgbench_ceiling(args, workdir: str, meter: CpuMeter, checkpoint) -> dict:
    dbname = "bench_ceiling"
    psql(args.database_url, f"DROP DATABASE IF EXISTS {dbname}; CREATE DATABASE {dbname};")
    url = db_url(args.database_url, dbname)
    repo = os.path.dirname(HERE)
    with open(os.path.join(repo, "migrations", "postgres", "0001_scim_core.sql")) as f:
        psql(url, f.read())
    log(f"pgbench: filling {dbname} with {args.users} users")
    with open(os.path.join(HERE, "pgbench_fill.sql")) as f:
        psql(url, f.read(), "-v", f"users={args.users}")
    results = {}
    for name in PGBENCH_SCRIPTS:
        script = os.path.join(HERE, f"pgbench_{name}.sql")
        base = [args.pgbench, "-n", "-M", "prepared", "-c", str(args.conns), "-j", str(args.threads),
                "-D", f"users={args.users}", "-f", script]
        if args.warmup > 0:
            subprocess.run(base + ["-T", str(int(args.warmup)), url], capture_output=True,
                           text=True, check=True)
        checkpoint(dbname=dbname)
        logdir = tempfile.mkdtemp(dir=workdir, prefix=f"pgbench-{name}-")
        cmd = base + ["-T", str(int(args.duration)), "-l", "--log-prefix",
                      os.path.join(logdir, "tx"), url]
        log(f"pgbench: {name}: measuring {args.duration}s")
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        before = meter.snapshot({"pgbench": proc.pid})
        _, status, rusage = os.wait4(proc.pid, 0)
        after = meter.snapshot({"pgbench": None})
        out, err = proc.stdout.read(), proc.stderr.read()
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"pgbench {name} failed: {err}\n{out}")
        tps = float(re.search(r"tps = ([\d.]+) \(without initial connection time\)", out).group(1))
        failed = re.search(r"number of failed transactions: (\d+)", out)
        lat = []
        for path in glob.glob(os.path.join(logdir, "tx*")):
            with open(path) as f:
                for line in f:
                    parts = line.split()
                    if len(parts) >= 3 and parts[2].isdigit():
                        lat.append(int(parts[2]))
        lat.sort()

        def pct(p):
            return round(lat[min(len(lat) - 1, int(len(lat) * p / 100))] / 1000, 2) if lat else None

        final = {"pgbench": before["pgbench"] + int(round((rusage.ru_utime + rusage.ru_stime) * CLK_TCK))}
        results[name] = {
            "tps": round(tps, 1),
            "transactions": len(lat),
            "failed": int(failed.group(1)) if failed else 0,
            "p50_ms": pct(50),
            "p99_ms": pct(99),
            "cpu": CpuMeter.split(before, after, final),
        }
        shutil.rmtree(logdir, ignore_errors=True)
        log(f"pgbench: {name}: {results[name]['tps']} tps, p50 {results[name]['p50_ms']} ms, "
            f"p99 {results[name]['p99_ms']} ms")
    psql(args.database_url, f"DROP DATABASE IF EXISTS {dbname};")
    return results


# ---------------------------------------------------------------- report


def fmt_cell(r: dict | None) -> str:
    if not r:
        return f"{'-':>9} {'-':>8} {'-':>8}"
    return f"{r['rps']:>9.1f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f}"


def top_others(u: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in u.get("other_top", {}).items() if v >= 0.5)


def report(res: dict) -> str:
    lines = []
    ours, peer, ceil = res["scimbridge"], res.get("peer") or {}, res.get("pgbench") or {}
    c = res["config"]
    lines.append("")
    lines.append(f"SCIM benchmark — {res['started']}  ({c['conns']} connections, {c['threads']} "
                 f"wrk threads, {c['duration']}s per scenario after {c['warmup']}s warm-up; "
                 f"load before: {res['load_before']})")
    src = res.get("source") or {}
    pgs = res.get("postgres_settings") or {}
    if src.get("commit"):
        lines.append(f"source: {src['commit'][:12]} {src.get('subject', '')}"
                     f"{' (plus uncommitted server changes)' if src.get('uncommitted_server_changes') else ''}")
    lines.append(f"scimbridge: {res['datasets']['scimbridge']['users']} users, "
                 f"{res['datasets']['scimbridge']['groups']} groups (one of "
                 f"{res['datasets']['scimbridge']['big_group_members']}) on PostgreSQL "
                 f"{pgs.get('server_version', '')} (fsync={pgs.get('fsync', '?')}, "
                 f"synchronous_commit={pgs.get('synchronous_commit', '?')}, "
                 f"shared_buffers={pgs.get('shared_buffers', '?')} x 8kB)")
    if peer:
        d = res["datasets"]["peer"]
        lines.append(f"scim2-server {res.get('peer_version', '')}: {d['users']} users, "
                     f"{d['groups']} groups (one of {d['big_group_members']}), in memory")
    lines.append("")
    hdr = (f"{'scenario':<28} {'ours r/s':>9} {'p50 ms':>8} {'p99 ms':>8} | {'peer r/s':>9} "
           f"{'p50 ms':>8} {'p99 ms':>8} | {'ratio':>8} {'target':>7} {'met':>4}")
    lines.append(hdr)
    lines.append("-" * len(hdr))
    for sc in SCENARIOS:
        if sc not in ours:
            continue
        o, p = ours[sc], peer.get(sc)
        ratio = o["rps"] / p["rps"] if p and p["rps"] > 0 else None
        tgt = PEER_TARGETS.get(sc)
        met = "" if tgt is None or ratio is None else ("yes" if ratio >= tgt else "NO")
        ratio_s = f"{ratio:>7.1f}x" if ratio is not None else f"{'-':>8}"
        tgt_s = f"≥{tgt:g}x" if tgt else ""
        lines.append(f"{LABELS[sc]:<28} {fmt_cell(o)} | {fmt_cell(p)} | {ratio_s} {tgt_s:>7} {met:>4}")
    if "floor" in ours and "filter" in ours and ours["floor"]["rps"]:
        lines.append(f"  ours: the filtered GET runs at {ours['filter']['rps'] / ours['floor']['rps']:.2f} of "
                     f"the floor, an authenticated request that reads no data "
                     f"({ours['floor']['rps']:.0f} r/s)")
    lines.append("")
    lines.append("errors (non-2xx responses / socket errors connect,read,write,timeout) and requests:")
    for who, rs in (("ours", ours), ("peer", peer)):
        for sc in SCENARIOS:
            if sc in rs:
                r = rs[sc]
                se = r["socket_errors"]
                lines.append(f"  {who:<5}{LABELS[sc]:<28} requests {r['requests']:>8}  non-2xx "
                             f"{r['non_2xx']:>5}  socket {se['connect']},{se['read']},{se['write']},"
                             f"{se['timeout']}  listen overflows {r['listen_overflows']:>5}  max {r['max_ms']:.1f} ms"
                             f"  left in flight {r['drain_seconds']:.0f}s")
    if ours.get("patch", {}).get("big_group_members_after") is not None:
        lines.append(f"  big group after the PATCH runs: ours {ours['patch']['big_group_members_after']}"
                     f" members, peer {peer.get('patch', {}).get('big_group_members_after')}")
    if ceil:
        lines.append("")
        lines.append("PostgreSQL ceiling (pgbench, same server and concurrency, prepared statements):")
        for sc, script in CEILING_OF.items():
            if script not in ceil or sc not in ours:
                continue
            pg = ceil[script]
            frac = ours[sc]["rps"] / pg["tps"] if pg["tps"] else 0
            what = ("insert users row + change_journal row, one transaction" if script == "insert"
                    else "SELECT … WHERE user_name_lower = lower($1)")
            lines.append(f"  {script:<7} {pg['tps']:>9.1f} tps  p50 {pg['p50_ms']} ms  p99 "
                         f"{pg['p99_ms']} ms  ({what}; failed {pg['failed']})")
            lines.append(f"          ours {LABELS[sc]}: {ours[sc]['rps']:.1f} r/s = {frac:.2f} of it "
                         f"(target ≥{CEILING_TARGET}) {'yes' if frac >= CEILING_TARGET else 'NO'}")
        if "select_ours" in ceil and "filter" in ours:
            pg = ceil["select_ours"]
            frac = ours["filter"]["rps"] / pg["tps"] if pg["tps"] else 0
            lines.append(f"  {'ours':<7} {pg['tps']:>9.1f} tps  p50 {pg['p50_ms']} ms  p99 {pg['p99_ms']} ms  "
                         f"(the statement our filtered GET runs: plus source scope, groups subquery, "
                         f"order and limit; failed {pg['failed']})")
            lines.append(f"          ours {LABELS['filter']}: {ours['filter']['rps']:.1f} r/s = {frac:.2f} of it")
            if ours.get("floor", {}).get("rps") and pg["tps"]:
                # Both runs keep the whole machine busy, so their costs per request add up.
                bound = 1 / (1 / ours["floor"]["rps"] + 1 / pg["tps"])
                of_select = (f" = {bound / ceil['select']['tps']:.2f} of the select" if "select" in ceil
                             else "")
                lines.append(f"  best    {bound:>9.1f} r/s (estimate) for any filtered GET that reads "
                             f"PostgreSQL on this machine: the floor's and this statement's machine time "
                             f"per request added, 1/(1/floor + 1/tps){of_select}; ours is "
                             f"{ours['filter']['rps'] / bound:.2f} of it")
    lines.append("")
    lines.append("CPU split (% of the machine's 2 cores; 100% = both busy):")
    lines.append(f"  {'run':<36} {'server':>7} {'postgres':>9} {'loadgen':>8} {'irq':>5} "
                 f"{'other':>6} {'idle':>6}  busiest other processes")
    for who, rs, sname in (("ours", ours, "scimbridge"), ("peer", peer, "scim2-server")):
        for sc in SCENARIOS:
            if sc in rs and "cpu" in rs[sc]:
                u = rs[sc]["cpu"]
                lines.append(f"  {who + ' ' + LABELS[sc]:<36} {u['server']:>7} {u['postgres']:>9} "
                             f"{u['wrk']:>8} {u['irq']:>5} {u['other']:>6} {u['idle']:>6}  {top_others(u)}")
    for script in PGBENCH_SCRIPTS:
        if script in ceil:
            u = ceil[script]["cpu"]
            lines.append(f"  {'pgbench ' + script:<36} {'-':>7} {u['postgres']:>9} {u['pgbench']:>8} "
                         f"{u['irq']:>5} {u['other']:>6} {u['idle']:>6}  {top_others(u)}")
    lines.append("  (server = scimbridge or scim2-server; loadgen = wrk or pgbench; postgres = all of "
                 "its processes; irq = interrupt and softirq time, mostly loopback networking, which the "
                 "kernel partly charges to the processes too, so a row can add up to a little over "
                 "100%; other = everything else, e.g. other jobs on the machine)")
    return "\n".join(lines)


# ---------------------------------------------------------------- main


def git_state() -> dict:
    """Which source the binary was built from (read-only git commands)."""
    repo = os.path.dirname(HERE)

    def git(*a):
        out = subprocess.run(["git", "-C", repo, *a], capture_output=True, text=True)
        return out.stdout.strip() if out.returncode == 0 else None

    changed = git("status", "--porcelain", "--untracked-files=no", "--", "server", "scim-schema",
                  "migrations", "Cargo.lock")
    return {"commit": git("rev-parse", "HEAD"), "subject": git("log", "-1", "--format=%s"),
            "uncommitted_server_changes": bool(changed)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True, help="the scimbridge release binary")
    ap.add_argument("--peer-bin", help="the scim2-server command (omit to skip the peer)")
    ap.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    ap.add_argument("--wrk", default=shutil.which("wrk") or "wrk")
    ap.add_argument("--pgbench", default=shutil.which("pgbench") or "/usr/bin/pgbench")
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--groups", type=int, default=10_000)
    ap.add_argument("--big", type=int, default=50_000)
    ap.add_argument("--peer-users", type=int)
    ap.add_argument("--peer-groups", type=int)
    ap.add_argument("--duration", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--conns", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--timeout", type=int, default=60, help="wrk's per-request timeout, seconds")
    ap.add_argument("--load-workers", type=int, default=4)
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--no-pgbench", action="store_true")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    args = ap.parse_args()
    args.scenarios = args.scenarios.split(",")
    args.peer_users = args.peer_users or args.users
    args.peer_groups = args.peer_groups or args.groups
    if not args.database_url or not args.database_url.startswith(("postgres://", "postgresql://")):
        ap.error("needs a postgres:// DATABASE_URL (run through bench/run.sh)")

    # On SIGTERM/SIGINT, unwind so that the servers this run started are stopped.
    def stop(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    workdir = tempfile.mkdtemp(prefix="scimbridge-bench-")
    pg_port = urllib.parse.urlsplit(args.database_url).port or 5432
    postmaster = find_postmaster(pg_port)
    log(f"PostgreSQL on port {pg_port}, postmaster pid {postmaster}; work dir {workdir}")
    meter = CpuMeter(postmaster)

    def checkpoint(vacuum: bool = False, dbname: str | None = None):
        url = db_url(args.database_url, dbname) if dbname else args.database_url
        if vacuum:
            psql(url, "VACUUM ANALYZE;")
        psql(url, "CHECKPOINT;")

    settings = psql(args.database_url, "SELECT name || '=' || setting FROM pg_settings WHERE name IN "
                    "('fsync','synchronous_commit','shared_buffers','max_connections',"
                    "'wal_sync_method','full_page_writes','server_version') ORDER BY name")
    pg_settings = dict(line.split("=", 1) for line in settings.splitlines() if "=" in line)
    with open("/proc/loadavg") as f:
        load_before = " ".join(f.read().split()[:3])
    started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    res = {
        "started": started,
        "load_before": load_before,
        "config": {k: getattr(args, k) for k in ("users", "groups", "big", "peer_users", "peer_groups",
                                                  "duration", "warmup", "conns", "threads", "timeout")},
        "machine": {"cpus": os.cpu_count()},
        "source": git_state(),
        "postgres_settings": pg_settings,
        "datasets": {},
    }
    try:
        ours, info = run_ours(args, workdir, meter, checkpoint)
        res["scimbridge"], res["datasets"]["scimbridge"] = ours, info
        if args.peer_bin:
            peer, pinfo = run_peer(args, workdir, meter)
            res["peer"], res["datasets"]["peer"] = peer, pinfo
            try:
                v = subprocess.run([os.path.join(os.path.dirname(args.peer_bin), "python"), "-c",
                                    "import importlib.metadata as m; print(m.version('scim2-server'))"],
                                   capture_output=True, text=True)
                res["peer_version"] = v.stdout.strip()
            except OSError:
                pass
        if not args.no_pgbench:
            res["pgbench"] = run_pgbench_ceiling(args, workdir, meter, checkpoint)
    finally:
        with open("/proc/loadavg") as f:
            res["load_after"] = " ".join(f.read().split()[:3])
        os.makedirs(args.out, exist_ok=True)
        path = os.path.join(args.out, f"bench-{time.strftime('%Y%m%d-%H%M%S')}.json")
        with open(path, "w") as f:
            json.dump(res, f, indent=2)
        log(f"figures written to {path}; logs in {workdir}")
    # ratios and fractions, for the JSON too
    summary = {}
    for sc in SCENARIOS:
        o, p = res["scimbridge"].get(sc), (res.get("peer") or {}).get(sc)
        if o and p and p["rps"]:
            summary[f"ratio_{sc}"] = round(o["rps"] / p["rps"], 2)
    for sc, script in CEILING_OF.items():
        o, pg = res["scimbridge"].get(sc), (res.get("pgbench") or {}).get(script)
        if o and pg and pg["tps"]:
            summary[f"fraction_{sc}_of_pg_{script}"] = round(o["rps"] / pg["tps"], 3)
    o, pg = res["scimbridge"], (res.get("pgbench") or {}).get("select_ours")
    if o.get("filter") and o.get("floor") and pg and pg["tps"]:
        summary["filter_of_floor"] = round(o["filter"]["rps"] / o["floor"]["rps"], 3)
        summary["filter_best_estimate_rps"] = round(1 / (1 / o["floor"]["rps"] + 1 / pg["tps"]), 1)
    res["summary"] = summary
    with open(path, "w") as f:
        json.dump(res, f, indent=2)
    text = report(res)
    with open(path[: -len(".json")] + ".txt", "w") as f:
        f.write(text + "\n")
    print(text)
    print(f"\nJSON: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
