"""test_release_run.py - multi-service releases run by the daemon (issue
12, docs/internals/releases.md): real daemons, the shop's eight services
as real processes (releasenv.py), the report read from `cutover release
run --json` and from the state.

* The eight-service release: release 1 installs 1.0.0 of every service,
  release 2 moves them all to 1.1.0; the recorded timestamps show each
  service started only after all its dependencies finished and the
  services of a group deploying in parallel; with concurrency: 2 no more
  than two deploy at once (and two do).
* Rollback in reverse order: `order` (group 3, a canary) answers 500s
  under load and its analysis aborts it; groups 2 and 1 are undone, last
  started first, auth last, while shoppers see 0 failed requests.
* `critical: false`: a service whose deploy fails is reported, the
  release ends degraded, nothing is rolled back, later groups still run.
* Command steps: a step's undo runs during a rollback; a point of no
  return keeps what ran before it (release failed, steps kept).
* Gates: an exit gate failing before anything changes; `when: between`
  and `after: ITEM` gates failing after group 1 roll group 1 back; metric
  gates reading the proxy's counters, passing under clean load and
  failing on a version that answers 500s.
"""
import datetime
import json
import os
import re

from harness import *
from releasenv import *


# ---------------------------------------------------------------- the eight services

def check_order(report, what):
    """Every service started after each of its dependencies finished."""
    steps = steps_by_name(report)
    for s, deps in TOPOLOGY.items():
        for d in deps:
            check(steps[s]["started_at"] >= steps[d]["finished_at"],
                  f"{what}: {s} started at {steps[s]['started_at']}, before {d} finished at "
                  f"{steps[d]['finished_at']}")


def check_groups(report, what):
    eq([[i["name"] for i in g] for g in report["plan"]["groups"]], GROUPS, f"{what}: the plan's groups")
    steps = steps_by_name(report)
    eq({s: steps[s]["group"] for s in TOPOLOGY}, {s: k + 1 for k, g in enumerate(GROUPS) for s in g},
       f"{what}: each step's group")


def check_parallel(report, what):
    """The services of each group of several ran at the same time: every
    one of them started before any of them finished."""
    steps = steps_by_name(report)
    for g in GROUPS:
        if len(g) < 2:
            continue
        first_end = min(steps[s]["finished_at"] for s in g)
        last_start = max(steps[s]["started_at"] for s in g)
        check(last_start < first_end, f"{what}: group {g} not in parallel: the last started at {last_start}, "
              f"the first finished at {first_end}")
        eq(max_overlap([(steps[s]["started_at"], steps[s]["finished_at"]) for s in g]), len(g),
           f"{what}: services of {g} deploying at once")


def test_eight_services_in_dependency_order_and_in_parallel_within_groups():
    with cutover(yaml_text=shop_yaml()) as c:
        shop = Shop(c)
        shop.add_all("1.0.0")
        shop.add_all("1.1.0")
        # 1.2.0 listens 0.3 s late: deploys long enough to overlap when nothing holds them back
        shop.add_all("1.2.0", {s: {"start_delay": 0.3} for s in TOPOLOGY})

        # release 1: nothing runs yet, everything installed in order
        r1 = shop.run_ok(shop.versions_file("install", "1.0.0"))
        check_groups(r1, "release 1")
        check_order(r1, "release 1")
        eq({s["name"]: (s["state"], s["from_version"], s["version"]) for s in r1["steps"]},
           {s: ("done", None, "1.0.0") for s in TOPOLOGY}, "release 1's steps")
        shop.wait_live({s: "1.0.0" for s in TOPOLOGY})

        # release 2: every service 1.0.0 -> 1.1.0, groups in parallel
        r2 = shop.run_ok(shop.versions_file("minor", "1.1.0"))
        check_groups(r2, "release 2")
        check_order(r2, "release 2")
        check_parallel(r2, "release 2")
        eq({s["name"]: (s["state"], s["from_version"], s["version"], s["strategy"]) for s in r2["steps"]},
           {s: ("done", "1.0.0", "1.1.0", "blue-green") for s in TOPOLOGY}, "release 2's steps")
        eq((r2["id"], r2["concurrency"], r2["rollbacks"], r2["reason"]), (2, 4, [], None), "release 2")
        for s in r2["steps"]:
            check(s["deployment_id"] and [p["phase"] for p in s["phases"]][-1] == "done",
                  f"{s['name']}: its deployment's phases {s['phases']}")
            check(s["started_at"] >= r2["started_at"] and s["finished_at"] <= r2["finished_at"],
                  f"{s['name']} inside the release's span")
        shop.wait_live({s: "1.1.0" for s in TOPOLOGY})
        shop.all_served({s: "1.1.0" for s in TOPOLOGY})
        group_ends = [max(steps_by_name(r2)[s]["finished_at"] for s in g) for g in GROUPS]
        print(f"    release 2: {r2['duration_ms']} ms; groups ended at +"
              + ", +".join(str(t - r2["started_at"]) for t in group_ends) + " ms")

        # release 3: concurrency 2 (the file's), four services in group 2
        path = shop.versions_file("two-at-once", "1.2.0", extra="concurrency: 2\n")
        text = shop.cli_ok("release", "plan", path).stdout
        check("4 groups, at most 2 deploys at once" in text.splitlines()[0], text)
        r3 = shop.run_ok(path)
        eq(r3["concurrency"], 2, "release 3's concurrency")
        check_order(r3, "release 3")
        steps = steps_by_name(r3)
        spans = [(s["started_at"], s["finished_at"]) for s in r3["steps"]]
        eq(max_overlap(spans), 2, f"deploys at once with concurrency 2: {spans}")
        g2 = [(steps[s]["started_at"], steps[s]["finished_at"]) for s in GROUPS[1]]
        eq(max_overlap(g2), 2, f"group 2's deploys at once: {g2}")
        shop.wait_live({s: "1.2.0" for s in TOPOLOGY})
        shop.all_served({s: "1.2.0" for s in TOPOLOGY})
        eq(c.shutdown_all(), 0, "daemon exit status")


# ---------------------------------------------------------------- rollback in reverse order

ORDER_CANARY = """deploy:
  strategy: canary
  steps: 50% 10s, 100%
  min_requests: 10
"""


def test_analysis_abort_in_group_3_rolls_back_groups_2_and_1_in_reverse_order():
    with cutover(yaml_text=shop_yaml(per_service={"order": ORDER_CANARY})) as c:
        shop = Shop(c)
        shop.install("1.0.0")
        shop.add_all("1.1.0", {"order": {"fail_every": 2}})
        path = shop.versions_file("spring-sale", "1.1.0")
        weights = {"order": 6}
        with Shoppers(c.port, list(TOPOLOGY), weights=weights, clients=6, max_s=60) as shoppers:
            wait_until(lambda: shoppers.count > 200, timeout=10, what="the shoppers under way")
            rc, run = shop.run(path)
            seen = shoppers.count
            wait_until(lambda: shoppers.count > seen + 200, timeout=10, what="shoppers after the rollback")
        report = run["report"]
        eq((rc, run["state"]), (1, "rolled-back"), f"the release: {report['reason']}")
        check(re.fullmatch(r"order: its deploy ended rolled-back: error rate \d+\.\d% over \d+ requests against "
                           r"0\.0% over \d+ on 1\.0\.0, p [<=] 0\.\d+; traffic back on 1\.0\.0 in .*",
                           report["reason"]), f"the reason names order and its analysis: {report['reason']!r}")
        steps = steps_by_name(report)
        eq({s: steps[s]["state"] for s in TOPOLOGY},
           {**{s: "rolled-back" for s in GROUPS[0] + GROUPS[1] + GROUPS[2]}, **{s: "skipped" for s in GROUPS[3]}},
           "the steps' states")
        eq(steps["order"]["strategy"], "canary", "order's strategy")
        check(steps["order"]["reason"].startswith("its deploy ended rolled-back: error rate"), steps["order"])
        check(all(steps[s]["started_at"] is None for s in GROUPS[3]), "group 4 never started")

        # the reverse order: the last started first (order: back on 1.0.0 by its own abort), auth last
        rollbacks = report["rollbacks"]
        eq([r["name"] for r in rollbacks], ["notification", "user", "inventory", "payment", "auth"],
           "the rollbacks, in the order they ran")
        eq({(r["kind"], r["result"]) for r in rollbacks}, {("service", "ok")}, "each rollback")
        for r in rollbacks:
            check(re.fullmatch(r"back to 1\.0\.0 \(deployment \d+\)", r["detail"]), f"instant rollback: {r}")
            eq(steps[r["name"]]["rollback_deployment_id"], int(r["detail"].split()[-1].rstrip(")")),
               f"{r['name']}'s rollback deployment")
        ats = [r["at"] for r in rollbacks]
        eq(ats, sorted(ats), "the rollbacks' times")
        auth_back = [p for p in steps["auth"]["phases"] if p["rollback"]]
        check(auth_back, f"auth's rollback phases: {steps['auth']['phases']}")
        for s in GROUPS[1]:
            check(steps[s]["finished_at"] <= auth_back[0]["at"],
                  f"{s} undone (at {steps[s]['finished_at']}) before auth's rollback began ({auth_back[0]['at']})")
            check(steps[s]["finished_at"] >= steps["order"]["finished_at"], f"{s} undone after order failed")
        shop.wait_live({s: "1.0.0" for s in TOPOLOGY})
        shop.all_served({s: "1.0.0" for s in TOPOLOGY})

        # shoppers saw nothing; the report counts the canary's 500s, each retried on 1.0.0
        traffic = report["traffic"]
        canary = traffic["services"]["order"]["1.1.0"]
        print(f"    shoppers: {shoppers.count} requests, {len(shoppers.failures)} failed; the report: order 1.1.0 "
              f"answered {canary['requests']} requests, {canary['failed']} failed, {canary['retried_on_stable']} of "
              f"them retried on 1.0.0; in all {traffic['requests']} requests, {traffic['failed']} failed, "
              f"{traffic['retried_on_stable']} retried on the stable version")
        eq(shoppers.failures[:5], [], f"requests that failed for shoppers ({len(shoppers.failures)})")
        check(shoppers.count > 1000, f"too little load: {shoppers.count} requests")
        check(shoppers.by_version.get(("order", "1.1.0")), "the canary never answered a shopper")
        check(canary["failed"] > 0, f"the canary's failures are counted: {canary}")
        eq(canary["retried_on_stable"], canary["failed"], "the canary's failures, each retried on 1.0.0")
        others = {(s, v): t["failed"] for s, vs in traffic["services"].items() for v, t in vs.items()
                  if (s, v) != ("order", "1.1.0")}
        eq({k: f for k, f in others.items() if f}, {}, "failures counted for other versions")
        eq((traffic["failed"], traffic["retried_on_stable"]), (canary["failed"], canary["failed"]),
           "the report: every failure retried on a stable version, none seen by a client")
        eq(c.shutdown_all(), 0, "daemon exit status")


# ---------------------------------------------------------------- critical: false

def test_a_non_critical_service_that_fails_leaves_the_release_degraded():
    services = ["auth", "payment", "inventory", "order", "notification"]
    with cutover(yaml_text=shop_yaml(services)) as c:
        shop = Shop(c, services)
        shop.install("1.0.0")
        shop.add_all("1.1.0", {"notification": {"exit_after": 0}})  # dies at once
        path = shop.release_file("degraded", "services:\n  auth: 1.1.0\n  payment: 1.1.0\n  inventory: 1.1.0\n"
                                 "  order: 1.1.0\n  notification:\n    version: 1.1.0\n    critical: false\n")
        text = shop.cli_ok("release", "plan", path).stdout
        check(re.search(r"notification +1\.0\.0 → 1\.1\.0 .*\(critical: false\)", text), text)
        rc, run = shop.run(path)
        report = run["report"]
        eq((rc, run["state"]), (0, "degraded"), f"the release: {report['reason']}")
        eq(report["reason"], "a service marked critical: false failed (see its step)", "the release's reason")
        steps = steps_by_name(report)
        eq({s: steps[s]["state"] for s in services},
           {"auth": "done", "payment": "done", "inventory": "done", "order": "done", "notification": "failed"},
           "the steps' states")
        n = steps["notification"]
        eq((n["critical"], n["group"]), (False, 2), "notification's step")
        eq(n["reason"], "its deploy ended failed: notification 1.1.0 exited with status 3 before it became healthy",
           "notification's reason")
        check(steps["order"]["started_at"] >= n["finished_at"], "group 3 ran after notification failed")
        eq(report["rollbacks"], [], "nothing rolled back")
        check(any(t.startswith("notification failed: ") and t.endswith("(critical: false: the release goes on)")
                  for t in timeline(report)), f"the timeline: {timeline(report)}")
        expected = {s: "1.1.0" for s in services}
        expected["notification"] = "1.0.0"
        shop.wait_live(expected)
        shop.all_served(expected)
        eq(c.shutdown_all(), 0, "daemon exit status")


# ---------------------------------------------------------------- command steps

# The daemon's PATH, long (as pyenv's is): the steps' commands must still find rm
LONG_PATH = {"PATH": ":".join(f"/nonexistent/{'x' * 60}/{i}" for i in range(8)) + ":" + os.environ["PATH"]}


def test_command_steps_undone_in_a_rollback_and_kept_before_a_point_of_no_return():
    services = ["auth", "payment"]
    with cutover(yaml_text=shop_yaml(services), env=LONG_PATH) as c:
        shop = Shop(c, services)
        shop.install("1.0.0")
        shop.add("auth", "1.1.0")
        shop.add("payment", "1.1.0", start_delay=1.0, exit_after=0)  # slow to start, then dies
        marker = os.path.join(shop.files, "cdn.marker")

        # cdn publishes between auth and payment; payment fails: cdn's undo runs, auth goes back
        path = shop.release_file("with-cdn", """services:
  auth: 1.1.0
  payment:
    version: 1.1.0
    depends_on: [cdn]
steps:
  cdn:
    run: touch cdn.marker && echo published
    undo: rm cdn.marker && echo unpublished
    depends_on: [auth]
    timeout: 10s
""")
        p = shop.run_in_background(path)
        try:
            wait_until(lambda: os.path.exists(marker), timeout=20, what="cdn's run (the marker)")
        finally:
            out, err = p.communicate(timeout=60)
        run = json.loads(out)
        report = run["report"]
        eq((p.returncode, run["state"]), (1, "rolled-back"), f"the release: {report['reason']}")
        eq(report["reason"], "payment: its deploy ended failed: payment 1.1.0 exited with status 3 before it became "
                             "healthy", "the reason")
        check(not os.path.exists(marker), "cdn's undo removed its marker")
        steps = steps_by_name(report)
        eq([(s["name"], s["group"], s["state"]) for s in report["steps"]],
           [("auth", 1, "rolled-back"), ("cdn", 2, "undone"), ("payment", 3, "rolled-back")], "the steps")
        cdn = steps["cdn"]
        eq((cdn["kind"], cdn["exit_code"], cdn["undo_exit_code"]), ("command", 0, 0), "cdn's exit codes")
        eq(open(cdn["output"]).read(), "published\n", "cdn's output")
        eq(open(cdn["undo_output"]).read(), "unpublished\n", "cdn's undo output")
        eq([(r["name"], r["kind"], r["result"]) for r in report["rollbacks"]],
           [("cdn", "command", "ok"), ("auth", "service", "ok")], "undone in reverse order")
        check(report["rollbacks"][0]["at"] <= report["rollbacks"][1]["at"], "cdn undone before auth")
        shop.wait_live({"auth": "1.0.0", "payment": "1.0.0"})

        # migrate is a point of no return: payment after it fails; what ran before it stays
        path = shop.release_file("with-migration", """services:
  auth: 1.1.0
  payment:
    version: 1.1.0
    depends_on: [migrate]
steps:
  migrate:
    run: touch migrated.marker
    point_of_no_return: true
    depends_on: [auth]
""")
        text = shop.cli_ok("release", "plan", path).stdout
        check("migrate          run `touch migrated.marker`, undo none (a point of no return)" in text, text)
        rc, run = shop.run(path)
        report = run["report"]
        eq((rc, run["state"]), (1, "failed"), f"the release: {report['reason']}")
        eq(report["reason"], "payment: its deploy ended failed: payment 1.1.0 exited with status 3 before it became "
                             "healthy; past the point of no return migrate: what ran before it is kept", "the reason")
        eq([(s["name"], s["state"]) for s in report["steps"]],
           [("auth", "kept"), ("migrate", "kept"), ("payment", "rolled-back")], "the steps")
        steps = steps_by_name(report)
        eq((steps["migrate"]["reason"], steps["auth"]["reason"]),
           ("a point of no return", "before the point of no return migrate"), "why they are kept")
        check(os.path.exists(os.path.join(shop.files, "migrated.marker")), "the migration's marker stays")
        eq(report["rollbacks"], [], "nothing undone")
        shop.wait_live({"auth": "1.1.0", "payment": "1.0.0"})
        eq(c.shutdown_all(), 0, "daemon exit status")


# ---------------------------------------------------------------- gates

def stopped_at(c, service, version):
    """When the daemon's log says the instances of service version stopped
    (Unix ms), in order."""
    out = []
    for line in c.logs().splitlines():
        m = re.match(r'ts=(\S+)Z .*msg="' + re.escape(f"{service} {version} on port ") + r'\d+ stopped"', line)
        if m:
            t = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f")
            out.append(int(t.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000))
    return out


def test_gates_before_between_after_an_item_and_on_the_proxys_metrics():
    services = ["auth", "payment", "inventory"]
    # auth's previous version stops 1 s after a switch: inside the window of the gate on auth below
    with cutover(yaml_text=shop_yaml(services, per_service={"auth": "deploy:\n  rollback_window: 1s"})) as c:
        shop = Shop(c, services)
        shop.install("1.0.0")
        shop.add_all("1.1.0", {"payment": {"fail_every": 4}})
        shop.add_all("1.2.0")
        moves = "services:\n  auth: VERSION\n  payment: VERSION\n  inventory: VERSION\n"

        # before: the first gate passes, the second fails; nothing is deployed
        before = shop.snapshot()
        path = shop.release_file("gated", moves.replace("VERSION", "1.2.0") + """gates:
  lint:
    run: "true"
    read: exit
  unit:
    run: echo 3 passed, 1 failed; exit 3
    read: exit
""")
        rc, run = shop.run(path)
        report = run["report"]
        eq((rc, run["state"]), (1, "rolled-back"), f"the release: {report['reason']}")
        eq(report["reason"], "gate unit failed: exit status 3, expected 0", "the reason")
        eq([(g["name"], g["point"], g["read"], g["passed"], g["exit_code"]) for g in report["gates"]],
           [("lint", "before", "exit", True, 0), ("unit", "before", "exit", False, 3)], "the gates")
        check(all(g["finished_at"] >= g["started_at"] >= report["started_at"] for g in report["gates"]),
              f"the gates' times: {report['gates']}")
        eq({s["name"]: (s["state"], s["deployment_id"]) for s in report["steps"]},
           {s: ("skipped", None) for s in services}, "nothing started")
        eq(report["rollbacks"], [], "nothing to roll back")
        after = shop.snapshot()
        eq(after["live"], before["live"], "live versions")
        eq(after["routing"], before["routing"], "routing")
        eq(after["deployments"], before["deployments"], "deployments")

        # when: between runs after group 1 (and not after the last group); failing, it undoes auth
        # after: auth runs after auth's group
        for name, gate in (("between", "    when: between\n"), ("after-auth", "    after: auth\n")):
            path = shop.release_file(name, moves.replace("VERSION", "1.2.0") + "gates:\n  smoke:\n"
                                     "    run: test -e nothing-here\n    read: exit\n" + gate)
            text = shop.cli_ok("release", "plan", path).stdout
            check(re.search(r"  group 1\n    auth .*\n    gate smoke +exit status 0 of `test -e nothing-here`\n"
                            r"  group 2\n", text), f"{name}: the plan puts the gate after group 1: {text}")
            rc, run = shop.run(path)
            report = run["report"]
            eq((rc, run["state"]), (1, "rolled-back"), f"{name}: {report['reason']}")
            eq(report["reason"], "gate smoke failed: exit status 1, expected 0", f"{name}: the reason")
            eq([(g["name"], g["point"], g["passed"]) for g in report["gates"]], [("smoke", "after group 1", False)],
               f"{name}: the gates")
            eq([(s["name"], s["state"]) for s in report["steps"]],
               [("auth", "rolled-back"), ("payment", "skipped"), ("inventory", "skipped")], f"{name}: the steps")
            eq([(r["name"], r["result"]) for r in report["rollbacks"]], [("auth", "ok")], f"{name}: the rollbacks")
            auth = steps_by_name(report)["auth"]
            check(auth["finished_at"] >= report["gates"][0]["finished_at"] >= auth["started_at"],
                  f"{name}: auth done, gated, then undone")
            shop.wait_live({s: "1.0.0" for s in services})

        # metric gates under load: payment 1.1.0 answers one request in four with a 500 (blue-green,
        # no watch: only the gate sees it)
        gate = """gates:
  errors:
    read: metric
    service: SERVICE
    window: 2s
    metric: error_rate
    max: 1%
    min_requests: 20
    after: SERVICE
"""
        with Shoppers(c.port, services, clients=3, max_s=60) as shoppers:
            path = shop.release_file("payment-errors", moves.replace("VERSION", "1.1.0")
                                     + gate.replace("SERVICE", "payment"))
            rc, run = shop.run(path)
            report = run["report"]
            eq((rc, run["state"]), (1, "rolled-back"), f"payment's errors: {report['reason']}")
            g = report["gates"][0]
            m = re.fullmatch(r"error rate of payment over 2s: (\d+\.\d\d)% \((\d+) of (\d+) requests\) > 1\.00%",
                             g["reason"])
            check(m and 10 <= float(m.group(1)) <= 40 and int(m.group(3)) >= 20 and not g["passed"],
                  f"the metric gate on payment: {g}")
            eq((g["metric"]["errors_5xx"], g["metric"]["requests"]), (int(m.group(2)), int(m.group(3))),
               "the gate's figures")
            eq(g["point"], "after group 2", "the gate's point")
            check(1900 <= g["finished_at"] - g["started_at"] < 4000, f"its 2 s window: {g}")
            eq([r["name"] for r in report["rollbacks"]], ["inventory", "payment", "auth"], "rolled back")
            shop.wait_live({s: "1.0.0" for s in services})
            failed_before = len(shoppers.failures)

            # auth's error rate over 3 s of clean load: passes, although 1.0.0, which answered
            # thousands of requests before, stops in the window (and its counts leave the proxy's)
            path = shop.release_file("auth-clean", moves.replace("VERSION", "1.2.0")
                                     + gate.replace("SERVICE", "auth").replace("2s", "3s"))
            report = shop.run_ok(path)
            g = report["gates"][0]
            m = re.fullmatch(r"error rate of auth over 3s: 0\.00% \(0 of (\d+) requests\) <= 1\.00%", g["reason"])
            check(m and int(m.group(1)) >= 100 and g["passed"], f"the metric gate on auth: {g}")
            eq(g["point"], "after group 1", "the gate's point")
            check([t for t in stopped_at(c, "auth", "1.0.0") if g["started_at"] < t < g["finished_at"] - 1000],
                  f"auth 1.0.0 stopped during the gate's window ({g['started_at']}..{g['finished_at']}): "
                  f"{stopped_at(c, 'auth', '1.0.0')}")
            shop.wait_live({s: "1.2.0" for s in services})
        eq(shoppers.failures[failed_before:], [], "failures under the clean release")
        check(failed_before > 0 and {f[1] for f in shoppers.failures} == {"payment"},
              f"the shoppers saw payment 1.1.0's 500s: {shoppers.failures[:5]}")
        eq(c.shutdown_all(), 0, "daemon exit status")
