"""Offline checks of the scimbridge Helm chart; scripts/chart-check.sh runs this in its venv.

No helm binary and no cluster: helm-python-sdk renders with Helm's own Go SDK (a shared library
in its wheel), kubernetes-validate checks the manifests against the Kubernetes API schemas it
bundles.

  1. Every ci/*.yaml values file (positive cases) must pass `helm lint --strict`, render, and
     each rendered object must validate with kubernetes-validate in strict mode (unknown fields
     are errors) against the oldest Kubernetes the chart supports and the newest bundled. The
     ServiceMonitor is a CRD without a bundled schema, so it is checked here field by field
     instead. Then the parsed objects are checked against what the values ask for: security
     context, probes, mounts, database mode, tokens, the TOML config (parsed back with tomllib
     and compared with the values), optional objects absent unless enabled, NOTES.txt.
  2. Every tests/fail/*.yaml (negative cases) must fail to render with the message its
     `# expect:` line gives; with `# expect-without-schema:` it must also fail with that
     message when values.schema.json is removed (the template's own `fail`).

Prints one line per check and a closing "chart-check: N passed, N failed"; exits 1 on failure.
"""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any, Callable

import kubernetes_validate
import yaml
from helm_python import Chart, HelmError, lint, values_from_yaml

CHART_DIR = Path(__file__).resolve().parents[1]
RELEASE, NAMESPACE = "demo", "scim"
FULLNAME = f"{RELEASE}-scimbridge"
# Chart.yaml's kubeVersion floor, and the newest version kubernetes-validate bundles.
KUBE_VERSIONS = ["1.29.0", "1.37.0"]

CONFIG_PATH = "/etc/scimbridge/scimbridge.toml"
TOKENS_DIR = "/etc/scimbridge/tokens"
SQLITE_URL = "sqlite:///var/lib/scimbridge/scimbridge.db"
OPTIONAL_KINDS = {
    "Ingress": ("ingress", "enabled"),
    "ServiceMonitor": ("serviceMonitor", "enabled"),
    "NetworkPolicy": ("networkPolicy", "enabled"),
}


class Failed(Exception):
    pass


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise Failed(message)


def expect_eq(actual: Any, wanted: Any, what: str) -> None:
    expect(actual == wanted, f"{what}: got {actual!r}, want {wanted!r}")


class Report:
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def check(self, name: str, fn: Callable[[], None]) -> None:
        try:
            fn()
        except Failed as e:
            self.failed += 1
            print(f"FAIL  {name}: {e}")
        except Exception as e:  # an unexpected error is a failed check, not a crash
            self.failed += 1
            print(f"FAIL  {name}: {type(e).__name__}: {e}")
        else:
            self.passed += 1
            print(f"ok    {name}")


# ---------------------------------------------------------------- rendering


def load_values(path: Path) -> dict[str, Any]:
    # Helm's own YAML reading, so numbers and strings arrive as `helm -f` would pass them.
    return values_from_yaml(path.read_text()) or {}


class Rendered:
    """One values file's render: parsed objects by kind, NOTES.txt, and the raw templates."""

    def __init__(self, chart: Chart, values: dict[str, Any]) -> None:
        self.values = chart.merge_values(values)
        self.raw = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
        self.notes = self.raw.get("scimbridge/templates/NOTES.txt", "")
        self.objects: list[dict[str, Any]] = []
        for template, text in sorted(self.raw.items()):
            if template.endswith("NOTES.txt"):
                continue
            for doc in yaml.safe_load_all(text):
                if doc:
                    self.objects.append(doc)

    def all(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def one(self, kind: str, name: str | None = None) -> dict[str, Any]:
        found = [o for o in self.all(kind) if name is None or o["metadata"]["name"] == name]
        expect(len(found) == 1, f"want exactly one {kind} {name or ''}, got {len(found)}")
        return found[0]


# ---------------------------------------------------------------- positive cases


def validate_strict(r: Rendered) -> None:
    for obj in r.objects:
        what = f"{obj['kind']} {obj['metadata']['name']}"
        if obj["apiVersion"].startswith("monitoring.coreos.com/"):
            check_service_monitor(r, obj)
            continue
        for version in KUBE_VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as e:
                raise Failed(f"{what} (Kubernetes {version}): {e.message} at {list(e.path)}")


def check_service_monitor(r: Rendered, sm: dict[str, Any]) -> None:
    """The CRD's schema is not bundled: check the fields we set and that it finds the Service."""
    expect_eq(sm["apiVersion"], "monitoring.coreos.com/v1", "ServiceMonitor apiVersion")
    expect_eq(set(sm["spec"]), {"namespaceSelector", "selector", "endpoints"}, "ServiceMonitor spec keys")
    service = r.one("Service")
    expect(sm["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items(),
           "ServiceMonitor selector matches the Service's labels")
    expect_eq(sm["spec"]["namespaceSelector"], {"matchNames": [NAMESPACE]}, "ServiceMonitor namespaceSelector")
    (endpoint,) = sm["spec"]["endpoints"]
    expect_eq(set(endpoint), {"port", "path", "interval", "scrapeTimeout"}, "ServiceMonitor endpoint keys")
    expect_eq(endpoint["port"], "metrics", "ServiceMonitor port: the metrics listener, not SCIM's")
    expect(any(p["name"] == "metrics" for p in service["spec"]["ports"]), "Service has a port named metrics")
    expect_eq(endpoint["path"], "/metrics", "ServiceMonitor path")
    for key in ("interval", "scrapeTimeout"):
        expect(re.fullmatch(r"[0-9]+(ms|s|m|h)", endpoint[key]) is not None, f"ServiceMonitor {key}")


def lint_strict(values: dict[str, Any]) -> None:
    for version in KUBE_VERSIONS:
        report = lint(CHART_DIR, values, strict=True, kube_version=f"v{version}")
        problems = [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
        expect(not problems, f"helm lint --strict (Kubernetes {version}): {problems}")


def container_of(deploy: dict[str, Any]) -> dict[str, Any]:
    (container,) = deploy["spec"]["template"]["spec"]["containers"]
    return container


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def mounts_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["mountPath"]: m for m in container.get("volumeMounts", [])}


def volumes_of(deploy: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in deploy["spec"]["template"]["spec"].get("volumes", [])}


def check_workload(r: Rendered) -> None:
    """Hardening, probes, ports and mounts every install gets."""
    v = r.values
    deploy = r.one("Deployment", FULLNAME)
    pod = deploy["spec"]["template"]["spec"]
    c = container_of(deploy)

    psc = pod["securityContext"]
    for key, want in {"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532, "fsGroup": 65532}.items():
        expect_eq(psc.get(key), want, f"pod securityContext.{key}")
    expect_eq(psc.get("seccompProfile"), {"type": "RuntimeDefault"}, "pod seccompProfile")
    sc = c["securityContext"]
    for key, want in {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                      "runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532}.items():
        expect_eq(sc.get(key), want, f"container securityContext.{key}")
    expect_eq(sc.get("capabilities"), {"drop": ["ALL"]}, "container capabilities")
    expect_eq(sc.get("seccompProfile"), {"type": "RuntimeDefault"}, "container seccompProfile")
    expect_eq(pod.get("automountServiceAccountToken"), v["serviceAccount"]["automount"], "automountServiceAccountToken")

    expect_eq(c["args"], ["serve"], "container args")
    expect_eq(c["image"], f"{v['image']['repository']}:{v['image']['tag'] or '0.1.0'}", "image")
    metrics_port = v["metrics"]["port"]
    expect_eq(c["ports"], [{"name": "http", "containerPort": 8080, "protocol": "TCP"},
                           {"name": "metrics", "containerPort": metrics_port, "protocol": "TCP"}],
              "container ports")
    # The probes use the metrics listener: plain HTTP even when the server terminates TLS.
    for probe, path in {"startupProbe": "/livez", "livenessProbe": "/livez", "readinessProbe": "/readyz"}.items():
        expect_eq(c[probe]["httpGet"], {"path": path, "port": "metrics", "scheme": "HTTP"}, probe)
    expect_eq(c["resources"], v["resources"], "resources")

    env = env_of(c)
    expect_eq(env["SCIMBRIDGE_CONFIG"].get("value"), CONFIG_PATH, "SCIMBRIDGE_CONFIG")
    expect_eq(env["SCIMBRIDGE_LISTEN"].get("value"), "0.0.0.0:8080", "SCIMBRIDGE_LISTEN")
    expect_eq(env["SCIMBRIDGE_SERVER__METRICS_LISTEN"].get("value"), f"0.0.0.0:{metrics_port}",
              "SCIMBRIDGE_SERVER__METRICS_LISTEN")

    mounts, volumes = mounts_of(c), volumes_of(deploy)
    expect_eq(mounts["/tmp"]["name"], "tmp", "/tmp mount")
    expect_eq(volumes["tmp"], {"name": "tmp", "emptyDir": {}}, "/tmp volume")
    expect_eq(mounts[CONFIG_PATH], {"name": "config", "mountPath": CONFIG_PATH,
                                    "subPath": "scimbridge.toml", "readOnly": True}, "config mount")
    expect_eq(volumes["config"]["configMap"]["name"], FULLNAME, "config volume")

    service = r.one("Service", FULLNAME)
    expect_eq(service["spec"]["ports"][0]["targetPort"], "http", "Service targetPort")
    expect_eq(service["spec"]["ports"][0]["port"], v["service"]["port"], "Service port")
    expect_eq(service["spec"]["ports"][1], {"name": "metrics", "port": metrics_port, "targetPort": "metrics",
                                            "protocol": "TCP"}, "Service metrics port")
    pod_labels = deploy["spec"]["template"]["metadata"]["labels"]
    expect(service["spec"]["selector"].items() <= pod_labels.items(), "Service selector matches the pods")
    expect_eq(deploy["spec"]["selector"]["matchLabels"], service["spec"]["selector"], "Deployment selector")

    sa_name = pod["serviceAccountName"]
    if v["serviceAccount"]["create"]:
        sa = r.one("ServiceAccount", sa_name)
        expect_eq(sa["metadata"].get("annotations", {}), v["serviceAccount"]["annotations"], "ServiceAccount annotations")
    else:
        expect_eq(r.all("ServiceAccount"), [], "no ServiceAccount when serviceAccount.create is false")
        expect_eq(sa_name, v["serviceAccount"]["name"] or "default", "serviceAccountName")

    for obj in r.objects:
        if obj["kind"] != "ServiceMonitor":
            expect_eq(obj["metadata"].get("namespace"), NAMESPACE, f"{obj['kind']} namespace")


def check_database(r: Rendered) -> None:
    v = r.values
    deploy = r.one("Deployment", FULLNAME)
    c = container_of(deploy)
    env, mounts, volumes = env_of(c), mounts_of(c), volumes_of(deploy)
    sqlite = not (v["database"]["url"] or v["database"]["existingSecret"])
    if sqlite:
        expect_eq(deploy["spec"]["replicas"], 1, "SQLite replicas")
        expect_eq(deploy["spec"]["strategy"], {"type": "Recreate"}, "SQLite strategy")
        expect_eq(env["DATABASE_URL"], {"name": "DATABASE_URL", "value": SQLITE_URL}, "SQLite DATABASE_URL")
        expect_eq(mounts["/var/lib/scimbridge"]["name"], "data", "SQLite data mount")
        claim = v["persistence"]["existingClaim"] or f"{FULLNAME}-data"
        if v["persistence"]["enabled"]:
            expect_eq(volumes["data"]["persistentVolumeClaim"], {"claimName": claim}, "SQLite volume")
            if not v["persistence"]["existingClaim"]:
                pvc = r.one("PersistentVolumeClaim", claim)
                expect_eq(pvc["spec"]["resources"]["requests"]["storage"], v["persistence"]["size"], "PVC size")
                expect_eq(pvc["spec"].get("storageClassName", ""), v["persistence"]["storageClass"], "PVC storageClass")
        else:
            expect_eq(volumes["data"].get("emptyDir"), {}, "SQLite emptyDir (persistence off)")
        expect_eq([s for s in r.all("Secret") if s["metadata"]["name"] == f"{FULLNAME}-database"], [],
                  "no database Secret in SQLite mode")
    else:
        expect_eq(deploy["spec"]["replicas"], v["replicaCount"], "replicas")
        expect_eq(deploy["spec"]["strategy"]["type"], "RollingUpdate", "PostgreSQL strategy")
        expect_eq(r.all("PersistentVolumeClaim"), [], "no PVC with PostgreSQL")
        expect("/var/lib/scimbridge" not in mounts, "no data mount with PostgreSQL")
        ref = env["DATABASE_URL"]["valueFrom"]["secretKeyRef"]
        if v["database"]["existingSecret"]:
            expect_eq(ref, {"name": v["database"]["existingSecret"], "key": v["database"]["existingSecretKey"]},
                      "DATABASE_URL from the existing Secret")
            expect_eq([s for s in r.all("Secret") if s["metadata"]["name"] == f"{FULLNAME}-database"], [],
                      "no chart-made database Secret with existingSecret")
        else:
            expect_eq(ref, {"name": f"{FULLNAME}-database", "key": "url"}, "DATABASE_URL from the chart's Secret")
            secret = r.one("Secret", f"{FULLNAME}-database")
            expect_eq(base64.b64decode(secret["data"]["url"]).decode(), v["database"]["url"], "database Secret")


def tokens_secret(v: dict[str, Any]) -> str:
    if v["auth"]["existingSecret"]:
        return v["auth"]["existingSecret"]
    return f"{FULLNAME}-tokens" if v["auth"]["tokens"] else ""


def check_tokens_and_config(r: Rendered) -> None:
    v = r.values
    deploy = r.one("Deployment", FULLNAME)
    c = container_of(deploy)
    mounts, volumes = mounts_of(c), volumes_of(deploy)
    secret_name = tokens_secret(v)

    expected = dict(v["config"])
    if secret_name:
        expected["auth"] = {**expected.get("auth", {}), "tokens_dir": TOKENS_DIR}
        expect_eq(mounts[TOKENS_DIR], {"name": "tokens", "mountPath": TOKENS_DIR, "readOnly": True}, "tokens mount")
        expect_eq(volumes["tokens"]["secret"], {"secretName": secret_name, "defaultMode": 0o440}, "tokens volume")
    else:
        expect(TOKENS_DIR not in mounts and "tokens" not in volumes, "no tokens mount without tokens")
    chart_tokens = [s for s in r.all("Secret") if s["metadata"]["name"] == f"{FULLNAME}-tokens"]
    if v["auth"]["tokens"] and not v["auth"]["existingSecret"]:
        (secret,) = chart_tokens
        decoded = {k: base64.b64decode(t).decode() for k, t in secret["data"].items()}
        expect_eq(decoded, v["auth"]["tokens"], "tokens Secret (key = source, value = token)")
        for token in v["auth"]["tokens"].values():
            expect(token not in r.notes, "NOTES.txt never shows a token")
    else:
        expect_eq(chart_tokens, [], "no chart-made tokens Secret")

    cm = r.one("ConfigMap", FULLNAME)
    toml_text = cm["data"]["scimbridge.toml"]
    expect_eq(tomllib.loads(toml_text), expected, "scimbridge.toml parsed back")

    # The checksums roll the pods when the ConfigMap or a chart-made Secret changes.
    annotations = deploy["spec"]["template"]["metadata"]["annotations"]
    configmap_text = r.raw["scimbridge/templates/configmap.yaml"]
    expect_eq(annotations["checksum/config"], hashlib.sha256(configmap_text.encode()).hexdigest(), "checksum/config")
    secrets_text = r.raw["scimbridge/templates/secret-tokens.yaml"] + r.raw["scimbridge/templates/secret-database.yaml"]
    expect_eq(annotations["checksum/secret"], hashlib.sha256(secrets_text.encode()).hexdigest(), "checksum/secret")


def check_optional(r: Rendered) -> None:
    v = r.values
    for kind, (section, key) in OPTIONAL_KINDS.items():
        want = 1 if v[section][key] else 0
        expect_eq(len(r.all(kind)), want, f"{kind} objects ({section}.{key}={v[section][key]})")
    pdb_wanted = v["podDisruptionBudget"]["enabled"] and v["replicaCount"] > 1
    expect_eq(len(r.all("PodDisruptionBudget")), int(pdb_wanted), "PodDisruptionBudget only with replicaCount > 1")
    if v["ingress"]["enabled"]:
        ing = r.one("Ingress", FULLNAME)
        hosts = [rule["host"] for rule in ing["spec"]["rules"]]
        expect_eq(hosts, [h["host"] for h in v["ingress"]["hosts"]], "Ingress hosts")
        for rule in ing["spec"]["rules"]:
            for p in rule["http"]["paths"]:
                expect_eq(p["backend"]["service"], {"name": FULLNAME, "port": {"name": "http"}}, "Ingress backend")
    if v["networkPolicy"]["enabled"]:
        np = r.one("NetworkPolicy", FULLNAME)
        ports = [p["port"] for rule in np["spec"]["egress"] for p in rule.get("ports", [])]
        expect(53 in ports and 443 in ports, f"NetworkPolicy egress allows DNS and HTTPS: {ports}")
        rules = {rule["ports"][0]["port"]: rule for rule in np["spec"]["ingress"]}
        expect_eq(sorted(rules), ["http", "metrics"], "NetworkPolicy ingress ports")
        for port, key in (("http", "ingressFrom"), ("metrics", "metricsFrom")):
            expect_eq(rules[port].get("from", []), v["networkPolicy"][key], f"NetworkPolicy {port} peers ({key})")


def check_notes(r: Rendered) -> None:
    v = r.values
    expect(f"exec deploy/{FULLNAME} -- scimbridge token create --source okta" in r.notes, "NOTES: source token command")
    expect(f"exec deploy/{FULLNAME} -- scimbridge token create --admin" in r.notes, "NOTES: admin token command")
    if v["ingress"]["enabled"]:
        for h in v["ingress"]["hosts"]:
            tls = any(h["host"] in t.get("hosts", []) for t in v["ingress"]["tls"])
            url = f"{'https' if tls else 'http'}://{h['host']}/scim/v2"
            expect(url in r.notes, f"NOTES: SCIM URL {url}")
    else:
        expect(f"port-forward svc/{FULLNAME}" in r.notes, "NOTES: port-forward")
        expect("http://127.0.0.1:8080/scim/v2" in r.notes, "NOTES: local SCIM URL")


# Facts particular to one values file, beyond what the values themselves imply.
def specific_default(r: Rendered) -> None:
    kinds = sorted(o["kind"] for o in r.objects)
    expect_eq(kinds, ["ConfigMap", "Deployment", "PersistentVolumeClaim", "Service", "ServiceAccount"],
              "objects of a default install")
    expect_eq(tomllib.loads(r.one("ConfigMap")["data"]["scimbridge.toml"]), {}, "default config")


def specific_postgres_ha(r: Rendered) -> None:
    expect_eq(r.one("Deployment")["spec"]["replicas"], 3, "replicas")
    expect_eq(r.one("ServiceMonitor")["metadata"]["labels"].get("release"), "kube-prometheus-stack",
              "ServiceMonitor extra label")
    expect_eq(r.one("PodDisruptionBudget")["spec"]["maxUnavailable"], 1, "PDB maxUnavailable")


def specific_existing_secret(r: Rendered) -> None:
    kinds = sorted(o["kind"] for o in r.objects)
    expect_eq(kinds, ["ConfigMap", "Deployment", "Service"], "no Secret, PVC or ServiceAccount made by the chart")


SPECIFIC: dict[str, Callable[[Rendered], None]] = {
    "default-values.yaml": specific_default,
    "postgres-ha-values.yaml": specific_postgres_ha,
    "existing-secret-values.yaml": specific_existing_secret,
}


def check_values_file(report: Report, chart: Chart, path: Path) -> None:
    name = path.name
    values = load_values(path)
    rendered: list[Rendered] = []

    def render() -> None:
        rendered.append(Rendered(chart, values))

    report.check(f"{name}: renders", render)
    if not rendered:
        return
    r = rendered[0]
    report.check(f"{name}: helm lint --strict", lambda: lint_strict(values))
    report.check(f"{name}: kubernetes-validate --strict (Kubernetes {', '.join(KUBE_VERSIONS)})",
                 lambda: validate_strict(r))
    report.check(f"{name}: workload hardening, probes, mounts", lambda: check_workload(r))
    report.check(f"{name}: database mode", lambda: check_database(r))
    report.check(f"{name}: tokens and TOML config", lambda: check_tokens_and_config(r))
    report.check(f"{name}: optional objects", lambda: check_optional(r))
    report.check(f"{name}: NOTES.txt", lambda: check_notes(r))
    if name in SPECIFIC:
        report.check(f"{name}: specifics", lambda: SPECIFIC[name](r))


# ---------------------------------------------------------------- negative cases


def expectations(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        m = re.match(r"#\s*(expect|expect-without-schema):\s*(.+)$", line)
        if m:
            found[m.group(1)] = m.group(2).strip()
    return found


def must_fail(chart: Chart, values: dict[str, Any], pattern: str | None) -> None:
    expect(pattern is not None, "the file has no '# expect:' line")
    try:
        chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    except HelmError as e:
        message = str(e)
        expect(re.search(pattern, message, re.S) is not None,
               f"failed, but the message does not match /{pattern}/: {message.strip()}")
        return
    raise Failed("rendered, but must fail")


def check_failure_case(report: Report, chart: Chart, schemaless: Chart, path: Path) -> None:
    wanted = expectations(path)
    values = load_values(path)
    name = f"fail/{path.name}"
    report.check(f"{name}: refused", lambda: must_fail(chart, values, wanted.get("expect")))
    if "expect-without-schema" in wanted:
        report.check(f"{name}: refused by the templates alone",
                     lambda: must_fail(schemaless, values, wanted["expect-without-schema"]))


# ---------------------------------------------------------------- main


def main() -> int:
    started = time.monotonic()
    report = Report()
    chart = Chart.load(CHART_DIR)
    with tempfile.TemporaryDirectory() as tmp:
        # The same chart without values.schema.json: proves the templates' own guards.
        copy = Path(tmp) / "scimbridge"
        shutil.copytree(CHART_DIR, copy)
        (copy / "values.schema.json").unlink()
        schemaless = Chart.load(copy)

        positive = sorted((CHART_DIR / "ci").glob("*.yaml"))
        negative = sorted((CHART_DIR / "tests" / "fail").glob("*.yaml"))
        if not positive or not negative:
            print("chart-check: no values files found in ci/ or tests/fail/")
            return 1
        for path in positive:
            check_values_file(report, chart, path)
        for path in negative:
            check_failure_case(report, chart, schemaless, path)

    elapsed = time.monotonic() - started
    print(f"\nchart-check: {len(positive)} values files rendered and validated, "
          f"{len(negative)} invalid ones refused, in {elapsed:.1f}s")
    print(f"chart-check: {report.passed} passed, {report.failed} failed")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
