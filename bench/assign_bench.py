#!/usr/bin/env python3
"""The assignment benchmark: AWS calls the bridge makes for account assignments against the
minimum necessary, and how it keeps AWS's limit of 10 outstanding assignment operations and
its own rate limit when AWS is slow — the release binary against the moto emulator
(tests/aws/moto_server.py), on a fresh SQLite database.

    bench/assign_bench.sh [--groups 100 --accounts 10 --permission-sets 5 --held-groups 20 --hold 3]

The SCIM data: --groups groups `bench-group-000` … with --members users each, loaded through
`scimbridge serve`'s /Bulk. The rules: --permission-sets managed permission sets `Bench-0` …
(ReadOnlyAccess attached), and one `[[assignments.account]]` rule per group giving it
`Bench-(i % permission sets)` in --accounts accounts (100000000000 …): groups × accounts
account assignments.

Phases, each printed as it ends:
1. initial sync (moto answers every CreateAccountAssignment SUCCEEDED at once): the
   assignment-related SSO Admin calls (CreateAccountAssignment, Describe…Status,
   ListAccountAssignments, ListAccountsForProvisionedPermissionSet, ListPermissionSets,
   DescribePermissionSet, …) against the minimum, one CreateAccountAssignment per assignment
   (target <= 1.05x); the permission-set calls and the Identity Store calls apart; wall time;
2. a no-op sync: no SSO Admin call at all (every call printed); then a no-op `--full` sync
   (drift check: reads only, printed for information); then a second rule for every group
   (the next permission set, the same accounts, all provisioned already): the calls against one
   create per new assignment, which now includes the look-up of who holds each provisioned
   permission set in each account (the bridge never takes over an assignment it did not make);
3. held IN_PROGRESS, on a fresh emulator and a fresh database with --held-groups groups (same
   accounts and permission sets): through a proxy that answers CreateAccountAssignment
   IN_PROGRESS and keeps answering Describe…CreationStatus IN_PROGRESS until --hold seconds
   after the create, counts the operations outstanding (answered, not yet released), and
   answers ThrottlingException above --rps requests in any second; the bridge runs with
   max_requests_per_second = --rps. Reports the most outstanding (must be <= 10), calls per
   assignment, throttles, and the wall time against its lower bounds: all calls / rps, and
   assignments x hold / 10.

Figures go to bench/results/assign-YYYYMMDD-HHMMSS.json. The exit status is 1 if a check failed.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sync_bench import REPO, Bridge, ProxyHandler, ThrottlingProxy, free_port, wait_port  # noqa: E402

MAX_IN_FLIGHT = 10  # AWS's limit on outstanding account-assignment operations per instance
POLICY = "arn:aws:iam::aws:policy/ReadOnlyAccess"

# SSO Admin operations that find, make or check assignments (and resolve permission set names).
ASSIGNMENT_OPS = {
    "CreateAccountAssignment", "DeleteAccountAssignment",
    "DescribeAccountAssignmentCreationStatus", "DescribeAccountAssignmentDeletionStatus",
    "ListAccountAssignments", "ListAccountsForProvisionedPermissionSet",
    "ListPermissionSetsProvisionedToAccount", "ListPermissionSets", "DescribePermissionSet",
    "CreateApplicationAssignment", "DeleteApplicationAssignment", "ListApplicationAssignments",
    "ListApplicationAssignmentsForPrincipal", "PutApplicationAssignmentConfiguration",
    "GetApplicationAssignmentConfiguration",
}
# SSO Admin operations that manage permission sets themselves (and the instance look-up).
PERMISSION_SET_OPS = {
    "CreatePermissionSet", "UpdatePermissionSet", "DeletePermissionSet",
    "AttachManagedPolicyToPermissionSet", "DetachManagedPolicyFromPermissionSet",
    "AttachCustomerManagedPolicyReferenceToPermissionSet",
    "DetachCustomerManagedPolicyReferenceFromPermissionSet",
    "PutInlinePolicyToPermissionSet", "DeleteInlinePolicyFromPermissionSet",
    "GetInlinePolicyForPermissionSet", "ListManagedPoliciesInPermissionSet",
    "ListCustomerManagedPolicyReferencesInPermissionSet",
    "ProvisionPermissionSet", "DescribePermissionSetProvisioningStatus", "ListInstances",
}
IDENTITY_STORE_OPS = {
    "CreateUser", "UpdateUser", "DeleteUser", "DescribeUser", "ListUsers", "GetUserId",
    "CreateGroup", "UpdateGroup", "DeleteGroup", "DescribeGroup", "ListGroups", "GetGroupId",
    "CreateGroupMembership", "DeleteGroupMembership", "DescribeGroupMembership",
    "ListGroupMemberships", "ListGroupMembershipsForMember", "GetGroupMembershipId",
    "IsMemberInGroups",
}


def split_calls(aws_calls):
    """aws_calls by kind: assignment SSO ops, permission-set SSO ops, Identity Store, other."""
    out = {"assignment": {}, "permission_set": {}, "identity_store": {}, "other": {}}
    for op, n in sorted(aws_calls.items()):
        kind = ("assignment" if op in ASSIGNMENT_OPS else "permission_set" if op in PERMISSION_SET_OPS
                else "identity_store" if op in IDENTITY_STORE_OPS else "other")
        out[kind][op] = n
    return out


def accounts_of(n):
    return [f"{100000000000 + j:012d}" for j in range(n)]


def group_name(i):
    return f"bench-group-{i:03d}"


def write_config(path, endpoint, rps, groups, accounts, sets, second_rule=False):
    lines = ["[aws]", 'region = "us-east-1"', f'endpoint_url = "{endpoint}"',
             f"max_requests_per_second = {rps}", ""]
    for s in range(sets):
        lines += ["[[permission_sets]]", f'name = "Bench-{s}"', f'managed_policies = ["{POLICY}"]', ""]
    account_list = ", ".join(f'"{a}"' for a in accounts_of(accounts))
    for g in range(groups):
        lines += ["[[assignments.account]]", f'group = "{group_name(g)}"',
                  f'permission_set = "Bench-{g % sets}"', f"accounts = [{account_list}]", ""]
        if second_rule:
            lines += ["[[assignments.account]]", f'group = "{group_name(g)}"',
                      f'permission_set = "Bench-{(g + 1) % sets}"', f"accounts = [{account_list}]", ""]
    with open(path, "w") as f:
        f.write("\n".join(lines))


def load_scim(bridge, groups, members):
    """groups groups of `members` users each, through /Bulk."""
    t = time.time()
    users = [o["location"].rsplit("/", 1)[1] for o in bridge.bulk([
        {"method": "POST", "path": "/Users", "bulkId": f"u{i}", "data": {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": f"bench-user-{i:05d}@bench.example.com", "displayName": f"Bench User {i}",
            "name": {"givenName": "Bench", "familyName": str(i)}}}
        for i in range(groups * members)])]
    list(bridge.bulk([
        {"method": "POST", "path": "/Groups", "bulkId": f"g{g}", "data": {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": group_name(g),
            "members": [{"value": u} for u in users[g * members:(g + 1) * members]]}}
        for g in range(groups)]))
    print(f"loaded {groups} groups of {members} users ({len(users)} users) in {time.time() - t:.1f} s",
          flush=True)


def sync(bridge, config, *extra):
    start = time.time()
    out = subprocess.run([bridge.binary, "--config", config, "sync", "--json", *extra],
                         env=bridge.env(True), capture_output=True, text=True)
    seconds = time.time() - start
    try:
        report = json.loads(out.stdout)
    except json.JSONDecodeError:
        sys.exit(f"sync printed no JSON report (exit {out.returncode}):\n{out.stdout[-2000:]}\n"
                 f"stderr:\n{out.stderr[-4000:]}")
    report["seconds"] = seconds
    report["exit_code"] = out.returncode
    return report


def start_moto():
    port = free_port()
    proc = subprocess.Popen([sys.executable, os.path.join(REPO, "tests/aws/moto_server.py"), str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    return proc, f"http://127.0.0.1:{port}"


def stop(proc):
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class HoldingProxy(ThrottlingProxy):
    """ThrottlingProxy's rate limit (ThrottlingException above `limit` requests in any second),
    and account-assignment creations held IN_PROGRESS for `hold` seconds after their answer:
    in that answer and in every DescribeAccountAssignmentCreationStatus answer until then.
    Counts the operations outstanding (answered and not yet released) and their maximum."""

    def __init__(self, upstream, limit, hold):
        self.hold = hold
        self.release = {}  # RequestId -> monotonic time it turns SUCCEEDED
        self.max_outstanding = 0
        self.calls = {}  # operation -> successful answers forwarded
        self.first_create = self.last_assignment_call = None
        super().__init__(upstream, limit)
        self.RequestHandlerClass = HoldingHandler

    def outstanding(self, now):
        return sum(1 for t in self.release.values() if t > now)


class HoldingHandler(ProxyHandler):
    """ProxyHandler's throttling and forwarding, with the creations held IN_PROGRESS."""

    def rewrite(self, op, body, payload):
        srv = self.server
        with srv.lock:
            srv.calls[op] = srv.calls.get(op, 0) + 1
        if op in ("CreateAccountAssignment", "DescribeAccountAssignmentCreationStatus"):
            return self.held(srv, op, body, payload)
        return payload

    def held(self, srv, op, body, payload):
        doc = json.loads(payload)
        status = doc.get("AccountAssignmentCreationStatus", {})
        now = time.monotonic()
        with srv.lock:
            srv.first_create = srv.first_create or (now if op == "CreateAccountAssignment" else None)
            srv.last_assignment_call = now
            if op == "CreateAccountAssignment":
                if status.get("Status") != "SUCCEEDED":
                    return payload
                srv.release[status["RequestId"]] = now + srv.hold
                srv.max_outstanding = max(srv.max_outstanding, srv.outstanding(now))
            else:
                request_id = json.loads(body).get("AccountAssignmentCreationRequestId")
                release = srv.release.get(request_id)
                if release is None or release <= now or status.get("Status") != "SUCCEEDED":
                    return payload
        status["Status"] = "IN_PROGRESS"
        return json.dumps(doc).encode()


def start_holding_proxy(upstream, limit, hold):
    proxy = HoldingProxy(upstream, limit, hold)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    return proxy


class Checks:
    def __init__(self):
        self.failed = []

    def __call__(self, ok, what):
        if not ok:
            self.failed.append(what)
            print(f"    CHECK FAILED: {what}", flush=True)
        return ok


def show_calls(report):
    calls = split_calls(report["aws_calls"])
    for kind, title in (("assignment", "assignment SSO calls"), ("permission_set", "permission-set SSO calls"),
                        ("identity_store", "Identity Store calls"), ("other", "other calls")):
        if calls[kind] or kind != "other":
            print(f"    {title}: {sum(calls[kind].values())} {json.dumps(calls[kind], sort_keys=True)}")
    if report["errors"]:
        print(f"    errors ({len(report['errors'])}): {json.dumps(report['errors'][:5])}")
    return calls


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--binary", default=os.path.join(
        os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target")), "release", "scimbridge"))
    p.add_argument("--groups", type=int, default=100, help="groups (one rule each) in phases 1-2 (default 100)")
    p.add_argument("--members", type=int, default=2, help="users per group (default 2)")
    p.add_argument("--accounts", type=int, default=10, help="accounts per rule (default 10)")
    p.add_argument("--permission-sets", type=int, default=5, help="managed permission sets (default 5)")
    p.add_argument("--held-groups", type=int, default=20,
                   help="groups in phase 3 (default 20: 200 assignments at 10 accounts); 0 skips it")
    p.add_argument("--hold", type=float, default=3.0,
                   help="seconds phase 3 holds each creation IN_PROGRESS (default 3)")
    p.add_argument("--rps", type=int, default=20,
                   help="phase 3: the bridge's max_requests_per_second and the proxy's limit (default 20)")
    args = p.parse_args()
    if not os.path.exists(args.binary):
        sys.exit(f"{args.binary} not found (bench/assign_bench.sh builds it)")
    if min(args.groups, args.members, args.accounts, args.permission_sets) < 1 or args.held_groups < 0:
        sys.exit("--groups, --members, --accounts and --permission-sets must be at least 1")
    check = Checks()
    results = {}
    moto, moto_url = start_moto()
    bridge = None
    try:
        # --- 1. initial sync -------------------------------------------------------------
        bridge = Bridge(args.binary, tempfile.mkdtemp(prefix="scimbridge-assignbench-"))
        load_scim(bridge, args.groups, args.members)
        n = args.groups * args.accounts
        config = os.path.join(bridge.workdir, "assign.toml")
        write_config(config, moto_url, 100000, args.groups, args.accounts, args.permission_sets)
        print(f"rules: {args.groups} groups x {args.accounts} accounts = {n} account assignments, "
              f"{args.permission_sets} managed permission sets", flush=True)
        report = sync(bridge, config)
        calls = split_calls(report["aws_calls"])
        assignment = sum(calls["assignment"].values())
        print(f"initial sync: {report['seconds']:.1f} s, status {report['status']}, assignment SSO calls "
              f"{assignment} vs minimum {n} ({assignment / n:.3f}x, target <= 1.05), "
              f"throttles {report['throttles']}", flush=True)
        show_calls(report)
        counts = report["counts"]
        print(f"    counts: {json.dumps(counts, sort_keys=True)}")
        check(report["status"] == "succeeded", f"initial sync status {report['status']} (want succeeded)")
        check(counts.get("create_account_assignment", 0) == n,
              f"create_account_assignment {counts.get('create_account_assignment', 0)} (want {n})")
        check(counts.get("create_permission_set", 0) == args.permission_sets,
              f"create_permission_set {counts.get('create_permission_set', 0)} (want {args.permission_sets})")
        check(assignment / n <= 1.05, f"assignment calls {assignment / n:.3f}x the minimum (target <= 1.05)")
        results["initial"] = {"seconds": report["seconds"], "status": report["status"], "assignments": n,
                              "assignment_calls": assignment, "ratio": assignment / n, "calls": calls,
                              "counts": counts, "throttles": report["throttles"]}

        # --- 2. no-op, no-op --full ------------------------------------------------------
        for label, key, extra in (("no-op sync", "noop", ()), ("no-op full sync (--full)", "noop_full", ("--full",))):
            report = sync(bridge, config, *extra)
            calls = split_calls(report["aws_calls"])
            sso = sum(calls["assignment"].values()) + sum(calls["permission_set"].values())
            changes = {k: v for k, v in report["counts"].items()
                       if v and k.startswith(("create_", "delete_", "update_", "adopt_", "provision_"))}
            print(f"{label}: {report['seconds']:.1f} s, status {report['status']}, SSO calls {sso}, "
                  f"all calls {sum(report['aws_calls'].values())}", flush=True)
            show_calls(report)
            print(f"    counts: {json.dumps(report['counts'], sort_keys=True)}")
            check(report["status"] == "succeeded", f"{label} status {report['status']} (want succeeded)")
            if key == "noop":
                check(sso == 0, f"no-op sync made {sso} SSO calls (want 0)")
                check(sum(changes.values()) == 0, f"no-op sync changed something: {changes}")
            else:
                writes = {op: c for op, c in report["aws_calls"].items()
                          if not op.startswith(("List", "Get", "Describe"))}
                check(not writes, f"no-op full sync wrote: {writes}")
            results[key] = {"seconds": report["seconds"], "status": report["status"], "sso_calls": sso,
                            "calls": calls, "counts": report["counts"]}

        # --- 2b. a second rule per existing group, in accounts already provisioned -------------
        if args.permission_sets > 1:
            write_config(config, moto_url, 100000, args.groups, args.accounts, args.permission_sets,
                         second_rule=True)
            report = sync(bridge, config)
            calls = split_calls(report["aws_calls"])
            assignment = sum(calls["assignment"].values())
            print(f"second rule for existing groups: {report['seconds']:.1f} s, status {report['status']}, "
                  f"assignment SSO calls {assignment} vs minimum {n} ({assignment / n:.3f}x; the bridge "
                  f"looks up who holds each provisioned permission set and account before creating)",
                  flush=True)
            show_calls(report)
            check(report["counts"].get("create_account_assignment", 0) == n,
                  f"second rule: create_account_assignment {report['counts'].get('create_account_assignment', 0)} (want {n})")
            results["second_rule"] = {"seconds": report["seconds"], "status": report["status"],
                                      "assignments": n, "assignment_calls": assignment,
                                      "ratio": assignment / n, "calls": calls}

        # --- 3. held IN_PROGRESS ---------------------------------------------------------
        if args.held_groups:
            bridge.stop()
            bridge = None
            stop(moto)
            moto, moto_url = start_moto()
            bridge = Bridge(args.binary, tempfile.mkdtemp(prefix="scimbridge-assignbench-"))
            load_scim(bridge, args.held_groups, args.members)
            n = args.held_groups * args.accounts
            proxy = start_holding_proxy(moto_url, args.rps, args.hold)
            config = os.path.join(bridge.workdir, "assign-held.toml")
            write_config(config, f"http://127.0.0.1:{proxy.server_address[1]}", args.rps,
                         args.held_groups, args.accounts, args.permission_sets)
            print(f"held IN_PROGRESS: {args.held_groups} groups x {args.accounts} accounts = {n} assignments, "
                  f"hold {args.hold:g} s, {args.rps} requests/s", flush=True)
            report = sync(bridge, config)
            proxy.shutdown()
            calls = split_calls(report["aws_calls"])
            total = sum(report["aws_calls"].values())
            creates = report["aws_calls"].get("CreateAccountAssignment", 0)
            describes = report["aws_calls"].get("DescribeAccountAssignmentCreationStatus", 0)
            rate_bound = total / args.rps
            flight_bound = n * args.hold / MAX_IN_FLIGHT
            bound = max(rate_bound, flight_bound)
            window = ((proxy.last_assignment_call - proxy.first_create)
                      if proxy.first_create is not None else float("nan"))
            window_bound = max((creates + describes) / args.rps, flight_bound)
            print(f"held IN_PROGRESS: {report['seconds']:.1f} s, status {report['status']}, "
                  f"max outstanding {proxy.max_outstanding} (limit {MAX_IN_FLIGHT}), throttles {report['throttles']} "
                  f"(proxy refused {proxy.throttled})", flush=True)
            print(f"    calls per assignment {(creates + describes) / n:.2f} "
                  f"({creates} creates, {describes} status polls = {describes / n:.2f} per assignment)")
            print(f"    wall time {report['seconds']:.1f} s vs lower bound {bound:.1f} s "
                  f"(rate: {total} calls / {args.rps} = {rate_bound:.1f} s; in flight: {n} x {args.hold:g} s / "
                  f"{MAX_IN_FLIGHT} = {flight_bound:.1f} s): {report['seconds'] / bound:.2f}x")
            print(f"    assignment stretch (first create to last poll) {window:.1f} s vs "
                  f"{window_bound:.1f} s: {window / window_bound:.2f}x")
            show_calls(report)
            print(f"    counts: {json.dumps(report['counts'], sort_keys=True)}")
            check(report["status"] == "succeeded", f"held sync status {report['status']} (want succeeded)")
            check(report["counts"].get("create_account_assignment", 0) == n,
                  f"held create_account_assignment {report['counts'].get('create_account_assignment', 0)} (want {n})")
            check(proxy.max_outstanding <= MAX_IN_FLIGHT,
                  f"max outstanding {proxy.max_outstanding} > {MAX_IN_FLIGHT}")
            results["held"] = {
                "assignments": n, "hold_seconds": args.hold, "rps": args.rps, "seconds": report["seconds"],
                "status": report["status"], "max_outstanding": proxy.max_outstanding,
                "creates": creates, "describes": describes, "calls_per_assignment": (creates + describes) / n,
                "throttles": report["throttles"], "proxy_throttled": proxy.throttled, "total_calls": total,
                "rate_bound_seconds": rate_bound, "in_flight_bound_seconds": flight_bound,
                "over_bound": report["seconds"] / bound, "assignment_stretch_seconds": window,
                "assignment_stretch_bound_seconds": window_bound, "calls": calls,
                "proxy_forwarded": proxy.calls, "counts": report["counts"]}
    finally:
        if bridge is not None:
            bridge.stop()
        stop(moto)
    results["checks_failed"] = check.failed
    print(json.dumps({k: ({kk: vv for kk, vv in v.items() if kk not in ("calls", "counts", "proxy_forwarded")}
                          if isinstance(v, dict) else v) for k, v in results.items()}, indent=2))
    os.makedirs(os.path.join(REPO, "bench/results"), exist_ok=True)
    out = os.path.join(REPO, "bench/results", time.strftime("assign-%Y%m%d-%H%M%S.json"))
    with open(out, "w") as f:
        json.dump({"args": vars(args), "results": results}, f, indent=2)
    print(f"figures written to {out}")
    if check.failed:
        print(f"{len(check.failed)} check(s) failed: {'; '.join(check.failed)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
