#!/usr/bin/env python3
"""The scale benchmark (issue 16): what a change costs at two directory sizes, and what `serve`
needs in memory through ingest, the initial sync, change runs and a full reconcile — the release
binary against the moto emulator (tests/aws/moto_server.py) behind a counting proxy, on SQLite or
PostgreSQL.

    bench/scale.sh --size small --db sqlite      # 10,000 users, 1,000 groups, 100,000 memberships
    bench/scale.sh --size large --db postgres    # 100,000 users, 10,000 groups, 1,000,000
    bench/scale.sh --users 2000 --groups 200 --memberships 20000 --big 5000   # smoke test
    bench/scale.sh --size large --db postgres --phases ingest     # ingest alone
    bench/scale.sh --size large --db postgres --seed-aws          # synced state seeded

The shape: one group of --big members (one POST), the rest of the memberships spread evenly over
the other groups (through /Bulk, 100 operations a request, 4 requests in parallel).

Phases, each printed as it ends:
1. ingest through /Bulk: users/s, memberships/s; the big group's POST time;
2. the initial sync, as `serve`'s start-up run: AWS writes against the minimum (users + groups +
   memberships), wall time. With --seed-aws (bench/aws_seed.py), the emulator and the bridge's
   record are seeded directly instead, `scimbridge sync --dry-run --json` must then plan no
   action, and the start-up run (a full reconcile reading the whole Identity Store) must write
   nothing — or the benchmark stops;
3. one membership added at the IdP (steady state): time from the SCIM request to
   CreateGroupMembership at the emulator, and the change run's CPU time and peak RSS growth in
   `serve` (sampled from /proc every 10 ms while the run lasts);
4. the same while a full reconcile of the whole directory runs;
5. a no-op full reconcile: AWS reads against the minimum (one page per 100 users, groups and
   members of each group), wall time;
6. `serve`'s peak RSS (VmHWM) over all of it.

Figures are printed and written to bench/results/scale-*.json; record them in bench/README.md
with the commit.
"""

import argparse
import concurrent.futures
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import requests

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import aws_seed  # noqa: E402
from sync_bench import ENV, free_port, start_proxy, wait_port  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZES = {
    "small": dict(users=10_000, groups=1_000, memberships=100_000, big=5_000),
    "large": dict(users=100_000, groups=10_000, memberships=1_000_000, big=50_000),
}
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
BIG_POST_LIMIT = 8 * 1024 * 1024


def proc_status(pid, key):
    """A /proc/<pid>/status figure in MB (VmRSS, VmHWM)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid):
    """CPU time the process has used so far: the sum over its threads of the scheduler's
    nanosecond count (`/proc/PID/task/*/schedstat`), since `/proc/PID/stat` counts in ticks of
    10 ms, as coarse as a whole change run. A thread that ends between two readings takes its
    time with it; the readings here are seconds apart, and `serve`'s threads (the runtime's
    workers, one per pooled SQLite connection) live for minutes. The tick count is the fallback
    where schedstat is missing."""
    total, found = 0, False
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                total += int(f.read().split()[0])
                found = True
        except (FileNotFoundError, ProcessLookupError):
            continue
    if found:
        return total / 1e9
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


class RssSampler:
    """Samples a process's RSS every 10 ms until stopped; `peak` is the highest seen."""

    def __init__(self, pid):
        self.pid, self.peak, self.stopped = pid, 0.0, threading.Event()
        self.thread = threading.Thread(target=self.sample, daemon=True)
        self.thread.start()

    def sample(self):
        while not self.stopped.is_set():
            self.peak = max(self.peak, proc_status(self.pid, "VmRSS"))
            time.sleep(0.01)

    def stop(self):
        self.stopped.set()
        self.thread.join()
        return self.peak


class Database:
    """A fresh SQLite file, or a fresh database on the PostgreSQL server DATABASE_URL names."""

    def __init__(self, kind, workdir):
        self.kind = kind
        if kind == "sqlite":
            self.url = f"sqlite://{workdir}/scale.db"
            return
        server = os.environ.get("DATABASE_URL", "")
        if not server.startswith(("postgres://", "postgresql://")):
            sys.exit("--db postgres needs DATABASE_URL (bench/scale.sh starts a throwaway server)")
        self.admin = server
        self.name = f"bench_scale_{os.getpid()}"
        self.psql(f"CREATE DATABASE {self.name}")
        self.url = server.rsplit("/", 1)[0] + "/" + self.name

    def psql(self, sql):
        subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", self.admin, "-c", sql], check=True,
                       capture_output=True)

    def drop(self):
        if self.kind == "postgres":
            self.psql(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")


def write_config(workdir, aws_endpoint=None, debounce=1):
    """The configuration every command of a phase uses (none for ingest: sync off)."""
    config = os.path.join(workdir, "scale.toml")
    with open(config, "w") as f:
        # The big group's POST (50,000 members: about 2.4 MB) is over the default 1 MiB limit of
        # a body outside /Bulk; 8 MiB is the /Bulk limit (scim.max_payload_bytes).
        f.write(f"[scim]\nmax_request_bytes = {BIG_POST_LIMIT}\n")
        if aws_endpoint:
            f.write(f'[aws]\nregion = "us-east-1"\nendpoint_url = "{aws_endpoint}"\n'
                    "max_requests_per_second = 100000\n"
                    # The schedule never comes: every full run here is asked for.
                    f'[sync]\nenabled = true\ndebounce_seconds = {debounce}\n'
                    'schedule = "0 0 0 1 1 *"\nmax_delete_fraction = 1.0\n')
    return config


def aws_env(db_url):
    env = dict(ENV, DATABASE_URL=db_url, RUST_LOG="warn")
    env.update(SERVE_ENV)
    env.pop("SCIMBRIDGE_CONFIG", None)
    return env


def check_dry_run(binary, config, db_url):
    """`scimbridge sync --dry-run --json` with the benchmark's configuration must plan nothing:
    the proof that a seeded state is the one a real initial sync would have left."""
    t = time.time()
    out = subprocess.run([binary, "--config", config, "sync", "--dry-run", "--json"],
                         env=aws_env(db_url), capture_output=True, text=True)
    try:
        report = json.loads(out.stdout)
    except ValueError:
        sys.exit(f"seeded state: the dry run printed no report (exit {out.returncode}):\n{out.stderr[-2000:]}")
    plan = report.get("plan") or []
    planned = {k: v for k, v in (report.get("counts") or {}).items() if v}
    if out.returncode != 0 or plan or planned or report.get("errors"):
        sys.exit("seeded state NOT in step: the dry run plans "
                 f"{len(plan)} actions {json.dumps(planned, sort_keys=True)} (exit {out.returncode}); "
                 f"first: {json.dumps(plan[:5])}; errors: {json.dumps((report.get('errors') or [])[:5])}")
    return {"seconds": time.time() - t, "planned_actions": 0, "aws_calls": report.get("aws_calls", {}),
            "run_id": report.get("run_id")}


def full_plan_dry_run(binary, config, db_url, workdir):
    """`scimbridge sync --dry-run --json` before anything is synced: the plan of the whole
    directory (every user, group and membership a create), its wall time and the CLI's peak
    RSS (GNU time's maximum resident set), the plan streamed to a file and counted."""
    out_path = os.path.join(workdir, "full-plan.json")
    t = time.time()
    with open(out_path, "w") as out:
        run = subprocess.run(["/usr/bin/time", "-f", "%M", binary, "--config", config, "sync",
                              "--dry-run", "--json"], env=aws_env(db_url), stdout=out,
                             stderr=subprocess.PIPE, text=True)
    seconds = time.time() - t
    peak_kb = int(run.stderr.strip().splitlines()[-1])
    with open(out_path) as f:
        report = json.load(f)
    actions = len(report.get("plan") or [])
    os.remove(out_path)
    return {"seconds": seconds, "peak_rss_mb": peak_kb / 1024, "actions": actions,
            "exit": run.returncode, "counts": report.get("counts", {})}


def wait_settled(admin, base, timeout=36000):
    """Until no resource is pending and no run is running: the start-up run reads at most
    50,000 pending resources (sync/run/pending.rs), so after a large ingest change runs follow
    it, and a phase that times one change run must not meet them."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        status = admin.get(base + "/admin/v1/status").json()
        run = newest_run(admin, base)
        if status.get("pending_resources") == 0 and (run is None or run.get("status") != "running"):
            return
        time.sleep(0.5)
    sys.exit(f"pending resources still not covered after {timeout} s")


# What --serve-env adds to the environment of serve and the CLI.
SERVE_ENV = {}


class Serve:
    """`scimbridge serve` with a SCIM token of source `bench` and an admin token."""

    def __init__(self, binary, workdir, db_url, aws_endpoint=None, debounce=1):
        self.binary, self.workdir, self.db_url = binary, workdir, db_url
        self.port = free_port()
        self.config = write_config(workdir, aws_endpoint, debounce)
        config = self.config
        self.proc = subprocess.Popen(
            [binary, "--config", config, "serve", "--listen", f"127.0.0.1:{self.port}"],
            env=self.env(aws=bool(aws_endpoint)), stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(workdir, "serve.log"), "a"))
        wait_port(self.port, timeout=120)
        self.base = f"http://127.0.0.1:{self.port}"

    def env(self, aws=False):
        env = dict(ENV if aws else {k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
                   DATABASE_URL=self.db_url, RUST_LOG="warn")
        env.pop("SCIMBRIDGE_CONFIG", None)
        env.update(SERVE_ENV)
        return env

    def cli(self, *args):
        out = subprocess.run([self.binary, "--config", self.config, *args], env=self.env(),
                             check=True, capture_output=True, text=True)
        return out.stdout.strip().splitlines()[-1]

    @property
    def pid(self):
        return self.proc.pid

    def stop(self):
        hwm = proc_status(self.pid, "VmHWM")
        self.proc.terminate()
        self.proc.wait()
        return hwm


def session(token):
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {token}"
    return s


def bulk(http, base, ops, parallel=4):
    """POSTs `ops` through /Bulk, 100 a request, `parallel` requests at a time; the ids made."""
    def send(chunk):
        r = http.post(base + "/scim/v2/Bulk", json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": chunk})
        r.raise_for_status()
        out = []
        for o in r.json()["Operations"]:
            if not str(o["status"]).startswith("2"):
                sys.exit(f"bulk failed: {o}")
            out.append(o["location"].rsplit("/", 1)[1])
        return out
    chunks = [ops[i:i + 100] for i in range(0, len(ops), 100)]
    with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
        return [i for ids in pool.map(send, chunks) for i in ids]


def ingest(serve, token, args):
    http = session(token)
    t = time.time()
    users = bulk(http, serve.base, [
        {"method": "POST", "path": "/Users", "bulkId": f"u{i}", "data": {
            "schemas": [USER_SCHEMA], "userName": f"user{i:06d}@scale.example.com",
            "displayName": f"User {i}", "name": {"givenName": "User", "familyName": str(i)},
            "emails": [{"value": f"user{i:06d}@scale.example.com", "type": "work", "primary": True}]}}
        for i in range(args.users)])
    user_seconds = time.time() - t

    big = json.dumps({"schemas": [GROUP_SCHEMA], "displayName": "Everyone",
                      "members": [{"value": u} for u in users[:args.big]]})
    t = time.time()
    r = http.post(serve.base + "/scim/v2/Groups", data=big,
                  headers={"Content-Type": "application/scim+json"})
    r.raise_for_status()
    big_seconds = time.time() - t
    big_group = r.json()["id"]

    rest = args.groups - 1
    spread = (args.memberships - args.big) // max(rest, 1)
    t = time.time()
    groups = bulk(http, serve.base, [
        {"method": "POST", "path": "/Groups", "bulkId": f"g{g}", "data": {
            "schemas": [GROUP_SCHEMA], "displayName": f"Group {g:05d}",
            "members": [{"value": users[(g * spread + k) % len(users)]} for k in range(spread)]}}
        for g in range(rest)])
    group_seconds = time.time() - t
    memberships = args.big + spread * rest
    figures = {
        "users": args.users, "groups": args.groups, "memberships": memberships,
        "users_per_second": args.users / user_seconds,
        "big_group_members": args.big, "big_group_post_seconds": big_seconds,
        "big_group_post_bytes": len(big),
        "spread_memberships_per_second": spread * rest / group_seconds,
        "spread_groups_seconds": group_seconds,
    }
    print(f"ingest: {args.users} users in {user_seconds:.1f} s ({figures['users_per_second']:.0f}/s); "
          f"a group of {args.big} members in one POST ({len(big) / 1e6:.1f} MB): {big_seconds:.2f} s; "
          f"{rest} groups with "
          f"{spread * rest} memberships in {group_seconds:.1f} s "
          f"({figures['spread_memberships_per_second']:.0f} memberships/s)")
    return users, [big_group, *groups], memberships, figures


def admin_run(admin, base, body, timeout=36000):
    """Starts a run through the admin API and waits for its end; its report."""
    r = admin.post(base + "/admin/v1/sync", json=body)
    r.raise_for_status()
    return wait_run(admin, base, r.json()["run_id"], timeout)


def wait_run(admin, base, run_id, timeout=36000):
    deadline = time.time() + timeout
    while time.time() < deadline:
        run = admin.get(f"{base}/admin/v1/sync/runs/{run_id}").json()
        if run.get("status") not in (None, "running"):
            return run
        time.sleep(0.5)
    sys.exit(f"run {run_id} did not end in {timeout} s")


def newest_run(admin, base):
    runs = admin.get(base + "/admin/v1/sync/runs").json()
    runs = runs.get("runs", runs) if isinstance(runs, dict) else runs
    return runs[0] if runs else None


def writes(report):
    return {op: n for op, n in report.get("aws_calls", {}).items()
            if not op.startswith(("List", "Get", "Describe"))}


def reads(report):
    return {op: n for op, n in report.get("aws_calls", {}).items()
            if op.startswith(("List", "Get", "Describe"))}


def membership_latency(proxy, admin_base, http, group, user, timeout=600):
    """Adds `user` to `group` at the IdP; seconds until CreateGroupMembership reaches the emulator."""
    before = len(proxy.membership_calls)
    t0 = time.time()
    http.patch(f"{admin_base}/scim/v2/Groups/{group}", json={
        "schemas": [PATCH_SCHEMA],
        "Operations": [{"op": "add", "path": "members", "value": [{"value": user}]}]}).raise_for_status()
    while len(proxy.membership_calls) == before and time.time() - t0 < timeout:
        time.sleep(0.01)
    return proxy.membership_calls[-1] - t0 if len(proxy.membership_calls) > before else float("inf")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--binary", default=os.path.join(
        os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target")), "release", "scimbridge"))
    p.add_argument("--size", choices=sorted(SIZES), default="small")
    p.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    for key in ("users", "groups", "memberships", "big"):
        p.add_argument(f"--{key}", type=int, help=f"overrides the size's {key}")
    p.add_argument("--debounce", type=int, default=1)
    p.add_argument("--phases", choices=["ingest", "all"], default="all",
                   help="ingest: stop after phase 1 (no emulator, no sync)")
    p.add_argument("--seed-aws", action="store_true",
                   help="seed the emulator and the bridge's record instead of a real initial sync "
                        "(bench/aws_seed.py; checked by a dry run that must plan nothing)")
    p.add_argument("--serve-env", action="append", default=[], metavar="KEY=VALUE",
                   help="an environment variable for serve and the CLI (for example "
                        "MALLOC_ARENA_MAX=2, or LD_PRELOAD of a heap profiler); repeatable")
    p.add_argument("--perf", metavar="FILE",
                   help="record serve's CPU with `perf record` during the change runs of phase 3 "
                        "into FILE (read it with `perf report -i FILE`)")
    p.add_argument("--keep", action="store_true",
                   help="keep the work directory (serve.log, the SQLite file) and the PostgreSQL database "
                        "even when every phase passed")
    args = p.parse_args()
    SERVE_ENV.update(kv.split("=", 1) for kv in args.serve_env)
    for key, value in SIZES[args.size].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    results = {"args": vars(args)}

    moto = proxy = None
    workdir = tempfile.mkdtemp(prefix="scimbridge-scale-")
    db = Database(args.db, workdir)
    serve = None
    hwm = {}
    try:
        # --- 1. ingest, with sync off ----------------------------------------------------
        serve = Serve(args.binary, workdir, db.url)
        token = serve.cli("token", "create", "--source", "bench")
        admin_token = serve.cli("token", "create", "--admin")
        users, groups, memberships, results["ingest"] = ingest(serve, token, args)
        hwm["ingest"] = serve.stop()
        serve = None
        results["serve_peak_rss_mb"] = hwm
        if args.phases == "ingest":
            print(f"serve peak RSS (VmHWM) during ingest: {hwm['ingest']:.0f} MB")
            return finish(args, results)

        moto_port = free_port()
        moto = subprocess.Popen([sys.executable, os.path.join(REPO, "tests/aws/moto_server.py"),
                                 str(moto_port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(moto_port)
        moto_url = f"http://127.0.0.1:{moto_port}"
        proxy = start_proxy(moto_url)
        endpoint = f"http://127.0.0.1:{proxy.server_address[1]}"

        # --- 2. the initial sync: serve's start-up run -----------------------------------
        if args.seed_aws:
            # Before the state is seeded: a dry run of the whole directory's plan.
            fp = full_plan_dry_run(args.binary, write_config(workdir, endpoint, args.debounce),
                                   db.url, workdir)
            results["full_plan_dry_run"] = fp
            print(f"dry run of the whole plan: {fp['actions']} actions in {fp['seconds']:.1f} s, "
                  f"CLI peak RSS {fp['peak_rss_mb']:.0f} MB (exit {fp['exit']})")
            seeded = aws_seed.seed(db.url, moto_url)
            print(f"seeded: {seeded['users']} users, {seeded['groups']} groups, {seeded['memberships']} "
                  f"memberships into the emulator and the record in {seeded['seconds']:.0f} s "
                  f"(reading the SCIM side {seeded['read_seconds']:.0f} s, emulator "
                  f"{seeded['emulator_seconds']:.0f} s, record {seeded['record_seconds']:.0f} s)")
            seeded["dry_run"] = check_dry_run(args.binary, write_config(workdir, endpoint, args.debounce),
                                              db.url)
            print(f"seeded state in step: the dry run plans 0 actions ({seeded['dry_run']['seconds']:.1f} s)")
            results["seeded"] = seeded
        t = time.time()
        serve = Serve(args.binary, workdir, db.url, aws_endpoint=endpoint, debounce=args.debounce)
        admin = session(admin_token)
        http = session(token)
        deadline = time.time() + 36000
        run = None
        # The start-up run: not the seeding's dry run, nor the change runs that follow it while
        # more resources are pending than it reads.
        while time.time() < deadline:
            runs = admin.get(serve.base + "/admin/v1/sync/runs").json()
            runs = runs.get("runs", runs) if isinstance(runs, dict) else runs
            run = next((r for r in runs if r.get("trigger") == "startup"), None)
            if run:
                break
            time.sleep(1)
        run = wait_run(admin, serve.base, run["run_id"])
        w = writes(run)
        if args.seed_aws:
            # The start-up run is a full reconcile: it reads the whole Identity Store back, so it
            # also proves the emulator holds what the record says.
            rd = reads(run)
            results["initial_sync"] = {"seeded": True, "startup_seconds": time.time() - t, "writes": w,
                                       "reads": rd, "status": run["status"], "trigger": run.get("trigger")}
            print(f"start-up full reconcile on the seeded state ({run.get('trigger')}): {time.time() - t:.0f} s, "
                  f"reads {sum(rd.values())}, writes {json.dumps(w, sort_keys=True)}, status {run['status']}")
            if sum(w.values()) or run["status"] != "succeeded" or not sum(rd.values()):
                errors = json.dumps(run.get("errors", [])[:10], indent=1)
                sys.exit("seeded state NOT in step: the start-up full reconcile wrote to AWS or did not "
                         f"succeed (status {run['status']}, writes {json.dumps(w)}); its first errors: {errors}")
        else:
            minimum = args.users + args.groups + memberships
            results["initial_sync"] = {"seconds": time.time() - t, "writes": w, "minimum": minimum,
                                       "ratio": sum(w.values()) / minimum, "status": run["status"]}
            print(f"initial sync: {results['initial_sync']['seconds']:.0f} s, writes {sum(w.values())} vs "
                  f"minimum {minimum} ({results['initial_sync']['ratio']:.3f}x), status {run['status']}")

        # --- 3. one membership added, steady state ---------------------------------------
        t = time.time()
        wait_settled(admin, serve.base)
        results["settle_seconds"] = time.time() - t
        time.sleep(args.debounce + 2)
        outsiders = users[-3:]
        small_group = groups[1]
        samples = []
        perf = None
        if args.perf:
            perf = subprocess.Popen(["perf", "record", "-F", "999", "-g", "-p", str(serve.pid),
                                     "-o", args.perf], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
        for user in outsiders:
            before_run = newest_run(admin, serve.base)["run_id"]
            cpu0, rss0 = cpu_seconds(serve.pid), proc_status(serve.pid, "VmRSS")
            sampler = RssSampler(serve.pid)
            latency = membership_latency(proxy, serve.base, http, small_group, user)
            while newest_run(admin, serve.base)["run_id"] == before_run:
                time.sleep(0.01)
            change_run = wait_run(admin, serve.base, newest_run(admin, serve.base)["run_id"])
            peak = sampler.stop()
            samples.append({"latency_seconds": latency, "cpu_seconds": cpu_seconds(serve.pid) - cpu0,
                            "rss_before_mb": rss0, "rss_peak_mb": peak, "rss_growth_mb": peak - rss0,
                            "aws_calls": change_run.get("aws_calls"), "status": change_run["status"]})
            time.sleep(args.debounce + 1)
        if perf:
            perf.send_signal(signal.SIGINT)
            perf.wait()
        results["one_membership"] = samples
        for s in samples:
            print(f"one membership: {s['latency_seconds']:.2f} s to CreateGroupMembership "
                  f"(target <= debounce {args.debounce} + 1 s); change run CPU {s['cpu_seconds']:.3f} s "
                  f"(incl. the SCIM request), RSS {s['rss_before_mb']:.0f} -> peak {s['rss_peak_mb']:.0f} MB; "
                  f"calls {json.dumps(s['aws_calls'], sort_keys=True)}")

        # --- 4. the same while a full reconcile runs -------------------------------------
        r = admin.post(serve.base + "/admin/v1/sync", json={"full": True})
        r.raise_for_status()
        full_id = r.json()["run_id"]
        time.sleep(1)
        during = membership_latency(proxy, serve.base, http, groups[2], users[-4])
        wait_run(admin, serve.base, full_id)
        results["one_membership_during_full_seconds"] = during
        print(f"one membership while a full reconcile runs: {during:.2f} s to CreateGroupMembership")

        # --- 5. a no-op full reconcile ----------------------------------------------------
        time.sleep(args.debounce + 2)
        t = time.time()
        rss0 = proc_status(serve.pid, "VmRSS")
        sampler = RssSampler(serve.pid)
        run = admin_run(admin, serve.base, {"full": True})
        peak = sampler.stop()
        # One page of 100 per call: the users, the groups, and each group's members (at least
        # one call a group; the members added in phases 3 and 4 are left out: a few pages).
        spread = (memberships - args.big) // max(args.groups - 1, 1)
        per_group = [args.big] + [spread] * (args.groups - 1)
        minimum_reads = (-(-args.users // 100) + -(-args.groups // 100)
                         + sum(max(1, -(-n // 100)) for n in per_group))
        rd = reads(run)
        results["noop_full"] = {"seconds": time.time() - t, "reads": rd, "minimum_reads": minimum_reads,
                                "ratio": sum(rd.values()) / minimum_reads, "writes": writes(run),
                                "rss_before_mb": rss0, "rss_peak_mb": peak, "status": run["status"]}
        print(f"no-op full reconcile: {results['noop_full']['seconds']:.1f} s, reads {sum(rd.values())} vs "
              f"minimum {minimum_reads} ({results['noop_full']['ratio']:.3f}x), writes "
              f"{json.dumps(writes(run), sort_keys=True)}, RSS {rss0:.0f} -> peak {peak:.0f} MB")
        hwm["sync"] = serve.stop()
        serve = None
        print(f"serve peak RSS (VmHWM): ingest {hwm['ingest']:.0f} MB, syncing {hwm['sync']:.0f} MB "
              "(target <= 256 MB)")
    finally:
        if serve:
            serve.stop()
        if proxy:
            proxy.shutdown()
        if moto:
            moto.terminate()
        if not args.keep:
            db.drop()
        # A run that ended well leaves nothing behind (a large SQLite file is 300 MB); one that
        # failed keeps its work directory, with serve.log, to look at.
        if sys.exc_info()[0] is None and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"the work directory is kept: {workdir}", file=sys.stderr)
    finish(args, results)


def finish(args, results):
    os.makedirs(os.path.join(REPO, "bench/results"), exist_ok=True)
    phases = "-ingest" if args.phases == "ingest" else ("-seeded" if args.seed_aws else "")
    out = os.path.join(REPO, "bench/results",
                       time.strftime(f"scale-{args.size}{phases}-{args.db}-%Y%m%d-%H%M%S.json"))
    results["commit"] = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                                       capture_output=True, text=True).stdout.strip()
    results["dirty"] = bool(subprocess.run(["git", "-C", REPO, "status", "--porcelain", "server"],
                                           capture_output=True, text=True).stdout.strip())
    with open(out, "w") as f:
        json.dump(results, f, indent=2)
    print(f"figures written to {out}")


if __name__ == "__main__":
    main()
