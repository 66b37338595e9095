"""test_release_plan.py - `cutover release plan` and the releases it
refuses (issue 12, docs/internals/releases.md), against a real daemon
running the shop's eight services at 1.0.0 (releasenv.py).

* The plan of a release moving the eight services to 1.1.0: its groups in
  topological order, on a terminal (each service from 1.0.0 to 1.1.0, its
  strategy and the digest the store holds), as JSON (the dependencies of
  both files resolved, the digests) and as a Graphviz graph (a cluster
  per group, an edge per dependency; run through `dot` when installed).
  Planning changes nothing.
* Refused before anything changes: a cycle (named by its path, `order →
  payment → order`), a version missing from the store, a digest other
  than the store's, an unknown dependency and a version that is not
  semver.  Each gives a clear message naming the file and line, exit 2,
  from `plan` and from `run`; a file with several problems lists every
  one; the live versions, the routing, the deployments, the release runs
  and the processes are the same after.
"""
import json
import re
import shutil
import subprocess

from harness import *
from releasenv import *

EDGES = {(s, d) for s, deps in TOPOLOGY.items() for d in deps}


def store_digests(shop, version):
    out = {}
    for s in TOPOLOGY:
        rows = json.loads(shop.cli_ok("releases", s, "--json").stdout)["releases"]
        out[s] = [r["digest"].removeprefix("sha256:") for r in rows if r["version"] == version][0]
    return out


def check_dot(text):
    """The graph's structure, line by line: a digraph of the release's
    name, one dashed cluster per group holding its services (labelled
    NAME\\nFROM → TO), one edge per dependency, balanced braces."""
    lines = text.rstrip("\n").split("\n")
    eq(lines[0], 'digraph "minor" {', "the graph's first line")
    eq(lines[-1], "}", "the graph's last line")
    depth, clusters, edges, current = 0, [], set(), None
    for line in lines:
        stmt = line.strip()
        check(stmt.endswith(("{", "}", ";")), f"a dot statement ends with ; or a brace: {line!r}")
        depth += stmt.count("{") - stmt.count("}")
        check(depth >= 0, f"braces close before they open at {line!r}")
        m = re.fullmatch(r"subgraph cluster_(\d+) \{", stmt)
        if m:
            current = {"n": int(m.group(1)), "nodes": [], "label": None}
            clusters.append(current)
            continue
        m = re.fullmatch(r'label="(group \d+)";', stmt)
        if m and current is not None:
            current["label"] = m.group(1)
            continue
        m = re.fullmatch(r'"(\w+)" \[label="(\w+)\\n1\.0\.0 → 1\.1\.0"\];', stmt)
        if m:
            check(current is not None and depth == 2, f"node {m.group(1)} outside a cluster")
            eq(m.group(2), m.group(1), "a node's label names it")
            current["nodes"].append(m.group(1))
            continue
        m = re.fullmatch(r'"(\w+)" -> "(\w+)";', stmt)
        if m:
            eq(depth, 1, f"edge {stmt} at the graph's level")
            edges.add((m.group(1), m.group(2)))
            continue
        if stmt == "}" and depth == 1:
            current = None
    eq(depth, 0, "braces balance")
    eq([(c["n"], c["label"], c["nodes"]) for c in clusters],
       [(k + 1, f"group {k + 1}", g) for k, g in enumerate(GROUPS)], "the clusters")
    eq(edges, EDGES, "the edges: each service to what it needs first")
    check('style=dashed;' in text and 'rankdir=BT;' in text, "the graph's attributes")


def test_plan_groups_as_text_json_and_dot():
    with cutover(yaml_text=shop_yaml()) as c:
        shop = Shop(c)
        shop.install("1.0.0")
        shop.add_all("1.1.0")
        digests = store_digests(shop, "1.1.0")
        path = shop.versions_file("minor", "1.1.0", extra="gates:\n  unit:\n    run: \"true\"\n    read: exit\n")
        before = shop.snapshot()

        # on a terminal
        text = shop.cli_ok("release", "plan", path).stdout
        lines = text.rstrip("\n").split("\n")
        eq(lines[0], "release minor: 8 services, 0 command steps, 4 groups, at most 4 deploys at once", "the title")
        eq(lines[1:3], ["  before", "    gate unit             exit status 0 of `true`"], "the gate before")
        groups, current = [], None
        for line in lines[3:]:
            m = re.fullmatch(r"  group (\d+)", line)
            if m:
                eq(int(m.group(1)), len(groups) + 1, "groups numbered in order")
                current = []
                groups.append(current)
                continue
            m = re.fullmatch(r"    (\w+) +1\.0\.0 → 1\.1\.0 +blue-green sha256:([0-9a-f]{12})", line)
            check(m and current is not None, f"a service line: {line!r}")
            eq(m.group(2), digests[m.group(1)][:12], f"{m.group(1)}'s digest")
            current.append(m.group(1))
        eq(groups, GROUPS, "the groups, in topological order")

        # JSON: what `release run` sends the daemon
        plan = json.loads(shop.cli_ok("release", "plan", path, "--json").stdout)
        eq((plan["name"], plan["file"], plan["dir"], plan["concurrency"]), ("minor", path, shop.files, 4), "the plan")
        eq([[i["name"] for i in g] for g in plan["groups"]], GROUPS, "--json: the groups")
        for k, g in enumerate(plan["groups"]):
            for i in g:
                eq((i["kind"], i["group"], i["critical"], i["version"], i["from_version"], i["strategy"]),
                   ("service", k + 1, True, "1.1.0", "1.0.0", "blue-green"), f"--json: {i['name']}")
                eq(sorted(i["depends_on"]), sorted(TOPOLOGY[i["name"]]), f"--json: {i['name']}'s dependencies")
                eq((i["digest"], i["expected_digest"]), (digests[i["name"]], None), f"--json: {i['name']}'s digest")
        eq([(g["name"], g["read"], g["when"], g["run"], g["expect_exit"]) for g in plan["gates"]],
           [("unit", "exit", "before", "true", 0)], "--json: the gates")

        # dot: the graph
        dot = shop.cli_ok("release", "plan", path, "--dot").stdout
        check_dot(dot)
        if shutil.which("dot"):
            r = subprocess.run(["dot", "-Tsvg"], input=dot, capture_output=True, text=True, timeout=30)
            eq(r.returncode, 0, f"Graphviz reads the graph: {r.stderr}")

        eq(shop.snapshot(), before, "what the plans changed")
        eq(c.shutdown_all(), 0, "daemon exit status")


# ---------------------------------------------------------------- refused

REFUSED = [
    # (name, release file, the message's problem lines after FILE:)
    ("cycle", "services:\n  order: 1.1.0\n  auth: 1.1.0\n  payment:\n    version: 1.1.0\n    depends_on: [order]\n"
              "  inventory: 1.1.0\n",
     ["2: a dependency cycle: order → payment → order"]),
    ("missing", "services:\n  auth: 1.1.0\n  payment: 9.9.9\n",
     ["3: services.payment: payment 9.9.9 is not in the release store (cutover release add payment 9.9.9 DIR)"]),
    ("digest", "services:\n  auth: 1.1.0\n  payment:\n    version: 1.1.0\n    digest: sha256:" + "0" * 64 + "\n",
     ["3: services.payment.digest: the release store holds payment 1.1.0 as sha256:{payment}, not sha256:"
      + "0" * 64 + " as the release file expects"]),
    ("unknown", "services:\n  auth: 1.1.0\n  payment:\n    version: 1.1.0\n    depends_on: [billing]\n",
     ["3: payment depends on billing (the release file): no such service or step"]),
    ("everything", "services:\n  auth: 1.1.0\n  payment:\n    version: 1.1.0\n    digest: sha256:" + "0" * 64 + "\n"
                   "    depends_on: [billing, order]\n  inventory: 9.9.9\n  order: 1.1.0\n",
     ["3: services.payment.digest: the release store holds payment 1.1.0 as sha256:{payment}, not sha256:"
      + "0" * 64 + " as the release file expects",
      "3: payment depends on billing (the release file): no such service or step",
      "7: services.inventory: inventory 9.9.9 is not in the release store (cutover release add inventory 9.9.9 DIR)",
      "3: a dependency cycle: payment → order → payment"]),
]


def test_refused_before_anything_changes():
    with cutover(yaml_text=shop_yaml()) as c:
        shop = Shop(c)
        shop.install("1.0.0")
        shop.add_all("1.1.0")
        payment = store_digests(shop, "1.1.0")["payment"]
        before = shop.snapshot()
        for name, text, problems in REFUSED:
            path = shop.release_file(name, text)
            expected = "the release is refused, nothing changed:\n" + "\n".join(
                f"{path}:{p.format(payment=payment)}" for p in problems)
            for verb in ("plan", "run"):
                r = shop.cli("release", verb, path)
                eq((r.returncode, r.stdout), (2, ""), f"{name}: release {verb}: {r.stderr}")
                eq(r.stderr, f"cutover release {verb}: {expected}\n", f"{name}: release {verb}'s message")
            r = shop.cli("release", "run", path, "--json")
            j = json.loads(r.stdout)
            eq((r.returncode, j["ok"], j["exit_code"], j["error"]), (2, False, 2, expected), f"{name}: run --json")
            eq(shop.snapshot(), before, f"{name}: what the refused release changed")

        # not a semantic version: the file itself is refused, naming line and column
        path = shop.release_file("semver", "services:\n  auth: 1.1.0\n  payment: \"1.1\"\n")
        for verb in ("plan", "run"):
            r = shop.cli("release", verb, path)
            eq((r.returncode, r.stderr), (2, f"cutover release {verb}: {path}:3:12: services.payment: 1.1 is not a "
                                             "valid semantic version (MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD])\n"),
               f"semver: release {verb}")
        eq(shop.snapshot(), before, "semver: what the refused release changed")
        shop.all_served({s: "1.0.0" for s in TOPOLOGY})
        eq(c.shutdown_all(), 0, "daemon exit status")
