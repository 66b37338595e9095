"""test_prometheus_rules.py - contrib/prometheus and contrib/grafana as
shipped, checked by Prometheus' own tool (Debian's promtool) and against
the metrics cutover documents:

* `promtool check rules` and `promtool check config` are clean, the
  config also with its commented bearer-token block switched on;
* `promtool test rules contrib/prometheus/tests/*.yml` passes, and every
  alert has a test where it fires and one where it does not;
* every alert has a severity and its summary, description and runbook_url
  (docs/operations.md#alert-NAME, NAME the alert's name in lower case);
* every cutover_* family the rules and the dashboard query is in
  docs/metrics.md, and the dashboard has its variables.

That the expressions return data from a real daemon is
test_prometheus.py's part.
"""
import glob
import json
import os
import re
import shutil
import subprocess
import tempfile

import yaml

from harness import *

PROM = os.path.join(ROOT, "contrib", "prometheus")
RULES = os.path.join(PROM, "cutover-rules.yml")
DASHBOARD = os.path.join(ROOT, "contrib", "grafana", "cutover.json")
SEVERITIES = {"critical", "warning"}


def promtool(*args, cwd=None):
    path = shutil.which("promtool")
    check(path, "promtool is not installed (Debian package prometheus: bash scripts/bootstrap)")
    return subprocess.run([path, *args], capture_output=True, text=True, timeout=120, cwd=cwd)


def rules():
    with open(RULES) as f:
        doc = yaml.safe_load(f)
    return [r for g in doc["groups"] for r in g["rules"]]


def alerts():
    return [r for r in rules() if "alert" in r]


def dashboard_exprs(d):
    """Every PromQL text of the dashboard: panel targets, annotations,
    variable queries (label_values(...) included, as written)."""
    out = [t["expr"] for p in d["panels"] for t in p.get("targets", [])]
    out += [a["expr"] for a in d["annotations"]["list"] if "expr" in a]
    out += [v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
            for v in d["templating"]["list"] if v["type"] == "query"]
    return out


def documented_families():
    with open(os.path.join(ROOT, "docs", "metrics.md")) as f:
        return set(re.findall(r"`(cutover_[a-z0-9_]+)`", f.read()))


def families_in(expr):
    """The cutover_* metric names expr reads (a histogram's _bucket, _sum,
    _count as the family); not the recording rules' level:name:operation."""
    names = set(re.findall(r"(?<![\w:])(cutover_[a-z0-9_]+)(?![\w:])", expr))
    return {re.sub(r"_(bucket|sum|count)$", "", n) if n.startswith("cutover_request_duration_seconds")
            or n.startswith("cutover_deploy_duration_seconds") else n for n in names}


def test_promtool_check_rules_and_config():
    r = promtool("check", "rules", RULES)
    eq(r.returncode, 0, f"promtool check rules: {r.stdout}{r.stderr}")
    n = len(rules())
    check(f"SUCCESS: {n} rules found" in r.stdout, f"promtool check rules: {r.stdout}")
    check("WARNING" not in r.stdout + r.stderr, f"promtool check rules warns: {r.stdout}{r.stderr}")
    r = promtool("check", "config", os.path.join(PROM, "prometheus.yml"))
    eq(r.returncode, 0, f"promtool check config: {r.stdout}{r.stderr}")
    check("WARNING" not in r.stdout + r.stderr, f"promtool check config warns: {r.stdout}{r.stderr}")
    print(f"    {n} rules, {len(alerts())} of them alerts; prometheus.yml valid")

    # the commented bearer-token block, switched on, is valid too
    with open(os.path.join(PROM, "prometheus.yml")) as f:
        text = f.read()
    block = re.search(r"\n    # authorization:\n(    #   .*\n)+", text)
    check(block, "prometheus.yml has no commented authorization: block")
    d = tempfile.mkdtemp(prefix="cutover-prom-")
    try:
        token = os.path.join(d, "cutover-admin-token")
        with open(token, "w") as f:
            f.write("a-token\n")
        on = block.group(0).replace("    # ", "    ").replace("/etc/prometheus/cutover-admin-token", token)
        with open(os.path.join(d, "prometheus.yml"), "w") as f:
            f.write(text.replace(block.group(0), on))
        shutil.copy(RULES, d)
        r = promtool("check", "config", os.path.join(d, "prometheus.yml"))
        eq(r.returncode, 0, f"promtool check config with the token block: {r.stdout}{r.stderr}")
        with open(os.path.join(d, "prometheus.yml")) as f:
            job = yaml.safe_load(f)["scrape_configs"][0]
        eq(job["authorization"], {"type": "Bearer", "credentials_file": token}, "the token block switched on")
    finally:
        shutil.rmtree(d)


def test_promtool_rule_unit_tests():
    files = sorted(glob.glob(os.path.join(PROM, "tests", "*.yml")))
    check(files, "no rule tests in contrib/prometheus/tests")
    r = promtool("test", "rules", *files)
    eq(r.returncode, 0, f"promtool test rules: {r.stdout}{r.stderr}")
    eq(r.stdout.count("SUCCESS"), len(files), f"every test file passes: {r.stdout}")
    # every alert: a case where it fires and one where it does not
    firing, quiet, cases = set(), set(), 0
    for path in files:
        with open(path) as f:
            doc = yaml.safe_load(f)
        eq(doc["rule_files"], ["../cutover-rules.yml"], f"{os.path.basename(path)} tests the shipped rules")
        for t in doc["tests"]:
            for a in t.get("alert_rule_test", []):
                cases += 1
                (firing if a.get("exp_alerts") else quiet).add(a["alertname"])
    names = {a["alert"] for a in alerts()}
    eq(sorted(names - firing), [], "alerts without a test where they fire")
    eq(sorted(names - quiet), [], "alerts without a test where they do not fire")
    print(f"    {len(files)} test files, {cases} alert cases: each of the {len(names)} alerts fires and stays quiet")


def test_alerts_have_severity_annotations_and_runbook():
    for a in alerts():
        name = a["alert"]
        check(re.fullmatch(r"Cutover[A-Z][A-Za-z0-9]+", name), f"alert name {name}")
        check(a.get("labels", {}).get("severity") in SEVERITIES, f"{name}: severity {a.get('labels')}")
        ann = a.get("annotations", {})
        for key in ("summary", "description", "runbook_url"):
            check(ann.get(key, "").strip(), f"{name}: no {key}")
        eq(ann["runbook_url"], f"docs/operations.md#alert-{name.lower()}", f"{name}: runbook_url")


def test_rules_and_dashboard_read_documented_families():
    known = documented_families()
    with open(DASHBOARD) as f:
        d = json.load(f)
    used = set()
    for r in rules():
        used |= families_in(r["expr"])
    for e in dashboard_exprs(d):
        used |= families_in(e)
    eq(sorted(used - known), [], "families queried but not in docs/metrics.md")
    print(f"    {len(used)} documented families queried by the rules and the dashboard")


def test_dashboard_shape():
    with open(DASHBOARD) as f:
        d = json.load(f)
    check(37 <= d["schemaVersion"] <= 41, f"schemaVersion {d['schemaVersion']}")
    var = {v["name"]: v for v in d["templating"]["list"]}
    eq((var["datasource"]["type"], var["datasource"]["query"]), ("datasource", "prometheus"), "datasource variable")
    for name in ("service", "version"):
        check(var[name]["query"]["query"].startswith("label_values("), f"${name} comes from label_values")
    ids = [p["id"] for p in d["panels"]]
    eq(len(ids), len(set(ids)), "panel ids unique")
    for p in d["panels"]:
        for t in p.get("targets", []):
            eq(t["datasource"]["uid"], "${datasource}", f"panel {p['title']}: data source")
    titles = " | ".join(p["title"] for p in d["panels"])
    for want in ("Requests / s by version", "Error rate by version", "Latency p50 / p90 / p99 by version",
                 "Traffic weights", "Instance health", "Instance restarts", "Disk free"):
        check(want in titles, f"no panel {want!r}: {titles}")
    annotations = {a["name"]: a for a in d["annotations"]["list"]}
    check("cutover_deploys_total" in annotations["Deploys"]["expr"], "deploy annotations")
    check("cutover_rollbacks_total" in annotations["Rollbacks"]["expr"], "rollback annotations")
