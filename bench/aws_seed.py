"""A synced state for the scale benchmark without a real initial sync (issue 16: "You may seed
the emulator's state directly when a real initial sync at that size takes too long").

At the large size the initial sync is about 1.1 million AWS calls, which the emulator takes
hours over. Instead, after ingest:

1. the SCIM side is read from the database (users, groups, memberships);
2. each user and group is shaped as the bridge's built-in AWS profile shapes it
   (server/src/mapping/aws_profile.rs `shape_user` / `shape_group`, ported below for the
   attributes a SCIM user can carry; anything it does not cover stops the seeding);
3. the emulator creates them and their memberships in-process (`POST /_scimbridge/seed` of
   tests/aws/moto_server.py) and answers their AWS ids;
4. the bridge's record is written to match, as a real initial sync leaves it: `aws_principals`
   (ownership `created`, `pushed` = the shape) and `aws_memberships` (with the emulator's
   membership ids).

Nothing here is taken on trust: the caller (bench/scale.py) then runs
`scimbridge sync --dry-run --json` with the benchmark's configuration, which must plan no action
at all — a `pushed` that differs from what the planner computes would show as an update of every
user, a missing membership as an add — and `serve`'s start-up full reconcile, which reads the
whole Identity Store back, must write nothing.
"""

import csv
import datetime
import io
import json
import sqlite3
import subprocess
import time

import requests

ENTERPRISE_SCIM = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
ENTERPRISE_AWS = "aws:identitystore:enterprise"
MAX_TEXT = 1024
# What shape_user copies, collapses and moves (aws_profile.rs: USER_TEXT, NAME_PARTS, COLLAPSED,
# ENTERPRISE_TEXT).
USER_TEXT = ["displayName", "nickName", "profileUrl", "title", "userType", "preferredLanguage",
             "locale", "timezone"]
NAME_PARTS = ["formatted", "familyName", "givenName", "middleName", "honorificPrefix",
              "honorificSuffix"]
COLLAPSED = [
    ("emails", ["value", "type"]),
    ("phoneNumbers", ["value", "type"]),
    ("addresses", ["formatted", "streetAddress", "locality", "region", "postalCode", "country",
                   "type"]),
    ("roles", ["value", "type"]),
]
ENTERPRISE_TEXT = ["employeeNumber", "costCenter", "organization", "division", "department"]


class Unsupported(Exception):
    """A SCIM resource this port does not shape as the bridge would (so it cannot be seeded)."""


def text(obj, key):
    """aws_profile.rs `text`: a trimmed non-empty string, None when absent or empty."""
    value = obj.get(key) if isinstance(obj, dict) else None
    if value is None:
        return None
    if not isinstance(value, str):
        # The bridge writes numbers and booleans as text; not worth porting for a benchmark.
        raise Unsupported(f"{key} is not a string: {value!r}")
    value = value.strip()
    if len(value) > MAX_TEXT:
        raise Unsupported(f"{key} is longer than {MAX_TEXT} characters")
    return value or None


def collapse(values, keep):
    """aws_profile.rs `collapse`: the primary element, else the `work` one, else the first."""
    if not isinstance(values, list):
        return None

    def has_value(item):
        try:
            return any(k != "type" and text(item, k) for k in keep)
        except Unsupported:
            return False

    usable = [v for v in values if has_value(v)]
    primary = [v for v in usable if v.get("primary") in (True, "true", "True")]
    work = [v for v in usable if str(v.get("type") or "").lower() == "work"
            and isinstance(v.get("type"), str)]
    chosen = (primary or work or usable or [None])[0]
    if chosen is None:
        return None
    one = {k: text(chosen, k) for k in keep if text(chosen, k)}
    one["primary"] = True
    return one


def fill_names(out, name, user_name):
    """aws_profile.rs `fill_names`: givenName, familyName and displayName from each other."""
    display, formatted = out.get("displayName"), name.get("formatted")
    source = formatted or display or user_name.split("@")[0]
    words = source.split()
    if "givenName" not in name:
        name["givenName"] = (words[0] if words else user_name)[:MAX_TEXT]
    if "familyName" not in name:
        family = " ".join(words[1:]) if len(words) > 1 else (words[0] if words else user_name)
        name["familyName"] = family[:MAX_TEXT]
    if display is None:
        given, family = name.get("givenName", ""), name.get("familyName", "")
        joined = given if given == family else f"{given} {family}"
        out["displayName"] = (formatted or joined).strip()[:MAX_TEXT]


def shape_user(doc):
    """The bridge's shape of a SCIM user (aws_profile.rs `shape_user`, no `[mapping]`)."""
    user_name = text(doc, "userName")
    if not user_name or len(user_name) > 128 or any(c.isspace() for c in user_name):
        raise Unsupported(f"userName {user_name!r} is one the bridge skips")
    out = {"userName": user_name}
    for attr in USER_TEXT:
        value = text(doc, attr)
        if value:
            out[attr] = value
    name = {}
    for part in NAME_PARTS:
        value = text(doc.get("name") or {}, part)
        if value:
            name[part] = value
    fill_names(out, name, user_name)
    out["name"] = name
    for attr, keep in COLLAPSED:
        one = collapse(doc.get(attr), keep)
        if one:
            out[attr] = [one]
    extension = doc.get(ENTERPRISE_SCIM)
    if isinstance(extension, dict):
        if extension.get("manager"):
            raise Unsupported("an enterprise manager (the bridge resolves it to an AWS user id)")
        enterprise = {k: text(extension, k) for k in ENTERPRISE_TEXT if text(extension, k)}
        if enterprise:
            out["extensions"] = {ENTERPRISE_AWS: enterprise}
    return out


def shape_group(doc):
    name = text(doc, "displayName")
    if not name:
        raise Unsupported("a group without displayName")
    return {"displayName": name}


class Record:
    """The SCIM side and the sync record of one benchmark database (SQLite file or PostgreSQL
    database), read and written in bulk."""

    def __init__(self, url):
        self.url = url
        self.sqlite = url.startswith("sqlite://")

    def rows(self, sql):
        if self.sqlite:
            with sqlite3.connect(self.url[len("sqlite://"):].split("?")[0]) as db:
                return [tuple(str(v) for v in r) for r in db.execute(sql)]
        out = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", self.url, "-c",
                              f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)"],
                             check=True, capture_output=True, text=True).stdout
        return [tuple(r) for r in csv.reader(io.StringIO(out))]

    def scim_side(self):
        users = [(i, json.loads(d), a) for i, d, a in
                 self.rows("SELECT id, doc, active FROM users ORDER BY seq")]
        groups = [(i, json.loads(d)) for i, d in self.rows("SELECT id, doc FROM groups ORDER BY seq")]
        members = self.rows("SELECT group_id, member_id, member_type FROM group_members")
        return users, groups, members

    def count(self, table):
        return int(self.rows(f"SELECT COUNT(*) FROM {table}")[0][0])

    def write(self, principals, memberships):
        """principals: (kind, resource_id, aws_id, name, pushed dict); memberships: (group_id,
        user_id, membership_id). Into empty tables, in one transaction."""
        for table in ("aws_principals", "aws_memberships", "aws_pending_creates"):
            if self.count(table):
                raise SystemExit(f"seeding needs an empty {table}: this database was synced before")
        now = datetime.datetime.now(datetime.timezone.utc)
        if self.sqlite:
            stamp = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            with sqlite3.connect(self.url[len("sqlite://"):].split("?")[0]) as db:
                db.executemany(
                    "INSERT INTO aws_principals (kind, resource_id, aws_id, ownership, name, pushed, "
                    "pushed_at) VALUES (?, ?, ?, 'created', ?, ?, ?)",
                    ((k, r, a, n, json.dumps(p), stamp) for k, r, a, n, p in principals))
                db.executemany(
                    "INSERT INTO aws_memberships (group_id, user_id, membership_id) VALUES (?, ?, ?)",
                    memberships)
            return
        stamp = now.isoformat()
        # One newline style throughout: COPY refuses the csv module's default \r\n beside the
        # \n of the end marker.
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerows((k, r, a, "created", n, json.dumps(p), stamp) for k, r, a, n, p in principals)
        principals_csv = buf.getvalue()
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(memberships)
        script = (
            "BEGIN;\n"
            "COPY aws_principals (kind, resource_id, aws_id, ownership, name, pushed, pushed_at) "
            "FROM STDIN WITH (FORMAT csv);\n" + principals_csv + "\\.\n"
            "COPY aws_memberships (group_id, user_id, membership_id) FROM STDIN WITH (FORMAT csv);\n"
            + buf.getvalue() + "\\.\nCOMMIT;\n")
        out = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", self.url], input=script,
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"writing the seeded record failed: {out.stderr[-2000:]}")


def seed(db_url, moto_url):
    """Seeds the emulator and the bridge's record from the SCIM side of `db_url`; figures."""
    t0 = time.time()
    record = Record(db_url)
    users, groups, members = record.scim_side()
    inactive = [u for u in users if u[2].lower() not in ("1", "true", "t")]
    if inactive:
        raise Unsupported(f"{len(inactive)} inactive users (on_deactivate decides their fate)")
    user_shapes = [shape_user(doc) for _, doc, _ in users]
    group_shapes = [shape_group(doc) for _, doc in groups]
    user_index = {u[0]: n for n, u in enumerate(users)}
    group_index = {g[0]: n for n, g in enumerate(groups)}
    nested = [m for m in members if m[2] != "User"]
    if nested:
        raise Unsupported(f"{len(nested)} nested groups (the bridge flattens them)")
    pairs = [(group_index[g], user_index[u]) for g, u, _ in members]
    read_seconds = time.time() - t0

    t = time.time()
    r = requests.post(moto_url + "/_scimbridge/seed", json={
        "Users": user_shapes, "Groups": group_shapes, "Memberships": pairs})
    if r.status_code != 200:
        raise SystemExit(f"the emulator refused the seed: {r.status_code} {r.text[:500]}")
    ids = r.json()
    emulator_seconds = time.time() - t

    t = time.time()
    principals = [("User", u[0], aws_id, shape["userName"], shape)
                  for u, aws_id, shape in zip(users, ids["UserIds"], user_shapes)]
    # A group's AWS name is its displayName as the IdP sent it (plan.rs `desired_groups`).
    principals += [("Group", g[0], aws_id, g[1]["displayName"], shape)
                   for g, aws_id, shape in zip(groups, ids["GroupIds"], group_shapes)]
    memberships = [(g, u, m) for (g, u, _), m in zip(members, ids["MembershipIds"])]
    record.write(principals, memberships)
    figures = {"users": len(users), "groups": len(groups), "memberships": len(memberships),
               "read_seconds": read_seconds, "emulator_seconds": emulator_seconds,
               "record_seconds": time.time() - t, "seconds": time.time() - t0}
    return figures
