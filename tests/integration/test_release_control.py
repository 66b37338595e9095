"""test_release_control.py - a release as it runs: the daemon killed in
the middle of it, aborted, awaiting approval, keeping secrets (issue 12,
docs/internals/releases.md), with real daemons and the shop's services
of releasenv.py.

* kill -9 of the daemon while group 2 deploys, then a restart: the
  release ends rolled-back (the documented rule), every service back on
  the version it had before, and the report says why.
* `cutover release abort ID` while group 2 deploys rolls the release back;
  a second abort is refused.
* With `approval: required` a run awaits (`cutover release run` exits 4);
  its requester cannot approve it (distinct), another user can (the CLI
  as `nobody` through setpriv), and it then runs; `reject` ends another
  one without changing anything.
* A secret (from the encrypted secrets file) that a step and a gate print
  appears nowhere: not in the report, not in their logs, not in any file
  under the state directory.
"""
import json
import os
import pwd
import re
import signal
import subprocess

from harness import *
from releasenv import *

# who the daemon names in a reason: the user running the tests (the admin socket's peer)
ME = pwd.getpwuid(os.getuid()).pw_name


def instances_of(shop, version):
    """(service, role) of every instance of version the daemon runs."""
    return [(m["name"], i["role"]) for m in shop.status()["managed"] for i in m["instances"]
            if i["version"] == version]


def test_daemon_killed_during_group_2_rolls_back_at_restart():
    """Group 2: notification deploys at once, payment, inventory and user
    take 4 s to listen.  kill -9 of the daemon once the report shows
    notification done and the three others running; at the restart the
    release is rolled back (docs/internals/releases.md): the three in
    flight are back on 1.0.0 already (their deploys aborted), notification
    and auth are rolled back, last started first; nothing of 1.1.0 runs."""
    with cutover(yaml_text=shop_yaml()) as c:
        shop = Shop(c)
        shop.install("1.0.0")
        slow = ["payment", "inventory", "user"]
        shop.add_all("1.1.0", {s: {"start_delay": 4} for s in slow})
        p = shop.run_in_background(shop.versions_file("spring-sale", "1.1.0"))
        try:
            at_kill = wait_running(shop, 2, slow, done=["auth", "notification"])
        finally:
            os.kill(c.proc.pid, signal.SIGKILL)
            c.proc.wait(10)
            out, err = p.communicate(timeout=30)
        eq(p.returncode, 3, f"the CLI following the release, once the daemon is gone: {out}{err}")
        eq(shop.stored(2)[0], "running", "the run's row at the kill")
        deployments = {s["name"]: s["deployment_id"] for s in at_kill["steps"]}

        restart_daemon(c)
        report = shop.wait_ended(2)
        eq((report["state"], report["reason"]), ("rolled-back", "the daemon stopped during the release"),
           "the release after the restart")
        check("the daemon stopped during the release: rolling it back (docs/internals/releases.md)"
              in timeline(report), f"the timeline says why: {timeline(report)}")
        steps = steps_by_name(report)
        eq({s["name"]: (s["state"], s["reason"]) for s in report["steps"]},
           {"auth": ("rolled-back", None), "notification": ("rolled-back", None),
            **{s: ("rolled-back", "cut short: the daemon stopped") for s in slow},
            **{s: ("skipped", None) for s in GROUPS[2] + GROUPS[3]}}, "the steps")
        eq({s: steps[s]["deployment_id"] for s in deployments}, deployments, "the deployments, as at the kill")
        eq([(r["name"], r["result"]) for r in report["rollbacks"]], [("notification", "ok"), ("auth", "ok")],
           "rolled back, in reverse order")
        check(all(steps[s]["finished_at"] <= steps["auth"]["finished_at"] for s in GROUPS[1]),
              "group 2 undone before auth")
        for s in slow:
            eq(history_state(shop, steps[s]["deployment_id"]), "aborted", f"{s}'s deployment of 1.1.0")
        shop.wait_live({s: "1.0.0" for s in TOPOLOGY})
        shop.all_served({s: "1.0.0" for s in TOPOLOGY})
        wait_until(lambda: not instances_of(shop, "1.1.0"), timeout=15, what="every instance of 1.1.0 stopped")
        eq(c.shutdown_all(), 0, "daemon exit status")


def history_state(shop, dep_id):
    rows = shop.db("SELECT state FROM deployments WHERE id = ?", dep_id)
    check(rows, f"no deployment {dep_id}")
    return rows[0][0]


def audit(shop, rid):
    """The release's own audit rows (its deploys' rows carry its id too: deploy_audit)."""
    return [tuple(r) for r in shop.db("SELECT actor, action, result FROM audit WHERE release_id = ?"
                                      " AND action LIKE 'release.%' ORDER BY id", rid)]


def deploy_audit(shop, rid):
    """The results of the release's deploys, as audited (any order: they run in parallel)."""
    return sorted(tuple(r) for r in shop.db("SELECT actor, action, result FROM audit WHERE release_id = ?"
                                            " AND action NOT LIKE 'release.%'", rid))


def check_audit(shop, rid, expected):
    """Release rid's audit rows are `expected` (written by the state
    worker after the run's own row: waited for, briefly)."""
    try:
        wait_until(lambda: audit(shop, rid) == expected, timeout=5, interval=0.05, what="the audit")
    except TestFailure:
        eq(audit(shop, rid), expected, f"release {rid}'s audit")


def test_abort_rolls_a_running_release_back():
    services = ["auth", "payment", "inventory"]
    with cutover(yaml_text=shop_yaml(services)) as c:
        shop = Shop(c, services)
        shop.install("1.0.0")
        shop.add_all("1.1.0", {"payment": {"start_delay": 4}})
        p = shop.run_in_background(shop.versions_file("spring-sale", "1.1.0"))
        try:
            wait_running(shop, 2, ["payment"], done=["auth", "inventory"])
            r = shop.cli("release", "abort", "2", "--reason", "wrong day")
        finally:
            out, err = p.communicate(timeout=60)
        eq(r.returncode, 0, f"release abort (it follows the run to its end: rolled back, as asked): {r.stdout}{r.stderr}")
        lines = r.stdout.splitlines()
        eq((lines[0], lines[-1]), ("release 2: rolling back", f"release 2 rolled-back: aborted by {ME}: wrong day"),
           f"what release abort prints: {r.stdout}")
        run = json.loads(out)
        report = run["report"]
        eq((p.returncode, run["state"], report["reason"]), (1, "rolled-back", f"aborted by {ME}: wrong day"),
           "the release, as its `release run` saw it end")
        eq([(s["name"], s["state"]) for s in report["steps"]],
           [("auth", "rolled-back"), ("payment", "rolled-back"), ("inventory", "rolled-back")], "the steps")
        eq(steps_by_name(report)["payment"]["reason"],
           "its deploy ended failed: aborted by cutover before it took traffic", "payment, aborted in flight")
        eq([(r["name"], r["result"]) for r in report["rollbacks"]],
           [("payment", "ok"), ("inventory", "ok"), ("auth", "ok")], "the rollbacks, in the order they ran")
        check(re.fullmatch(r"back to 1\.0\.0 \(deployment \d+\)", report["rollbacks"][2]["detail"]),
              f"auth's rollback: {report['rollbacks'][2]}")
        shop.wait_live({s: "1.0.0" for s in services})
        shop.all_served({s: "1.0.0" for s in services})
        check_audit(shop, 2, [(ME, "release.run", "ok"), (ME, "release.abort", "ok"),
                            ("cutover (automatic)", "release.end", "rolled-back")])
        # auth and inventory were done, payment aborted in flight: each deploy's result in the audit
        eq(deploy_audit(shop, 2), [(ME, "deploy", "done"), (ME, "deploy", "done"), (ME, "deploy", "failed")],
           "release 2's deploys in the audit")
        r = shop.cli("release", "abort", "2")
        eq((r.returncode, r.stderr), (1, "cutover release abort: release 2 is not running (cutover release list)\n"),
           "a second abort")
        eq(c.shutdown_all(), 0, "daemon exit status")


APPROVAL = "approval:\n  required: true\n  distinct: true\n  timeout: 1m\n"


def as_nobody(shop, *args):
    """The CLI run as user nobody against the daemon's socket, opened to it
    for this test."""
    for d in (shop.c.dir, f"{shop.c.dir}/state"):
        os.chmod(d, 0o711)
    os.chmod(shop.sock, 0o666)
    return subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", BIN, *args,
                           "--socket", shop.sock], capture_output=True, text=True, timeout=30, cwd="/",
                          env=clean_env())


def test_approval_required_distinct_approver_and_reject():
    services = ["auth", "payment"]
    with cutover(yaml_text=shop_yaml(services, extra=APPROVAL)) as c:
        shop = Shop(c, services)
        shop.add_all("1.0.0")
        shop.add_all("1.1.0")
        nobody = pwd.getpwnam("nobody").pw_uid

        # the run awaits; its requester may not approve it; nobody does, and it runs
        r = shop.cli("release", "run", shop.versions_file("install", "1.0.0"))
        eq(r.returncode, 4, f"release run awaiting approval: {r.stdout}{r.stderr}")
        check(r.stdout.startswith("release 1 (install) started\n")
              and r.stdout.endswith("\nrelease 1 awaits approval: cutover release approve 1\n"), r.stdout)
        run = shop.active(1)
        eq((run["state"], run["report"]["started_at"]), ("awaiting-approval", None), "the run awaiting")
        check(run["report"]["expires_at"] - run["report"]["requested_at"] == 60000, "it expires in a minute")
        eq(shop.db("SELECT count(*) FROM deployments"), [(0,)], "nothing deployed while it awaits")
        r = shop.cli("release", "approve", "1")
        eq((r.returncode, r.stderr),
           (1, "cutover release approve: approval.distinct: who asked for release 1 cannot approve it\n"),
           "approved by its requester")
        eq(shop.active(1)["state"], "awaiting-approval", "still awaiting")
        r = as_nobody(shop, "release", "approve", "1", "--json")
        eq((r.returncode, json.loads(r.stdout or "null")), (0, {"id": 1}), f"approved by nobody: {r.stderr}")
        report = shop.wait_ended(1)
        eq((report["state"], report["started_by"], report["started_uid"], report["approved_by"],
            report["approved_uid"]), ("succeeded", ME, os.getuid(), "nobody", nobody), "who started and approved it")
        eq(timeline(report)[:3], ["awaits approval: cutover release approve 1", "approved by nobody",
                                  "started: 2 groups, at most 4 deploys at once"], "the timeline")
        check(report["started_at"] > report["requested_at"], "started once approved")
        check_audit(shop, 1, [(ME, "release.run", "ok"), (ME, "release.approve", "refused"),
                            ("nobody", "release.approve", "ok"), ("cutover (automatic)", "release.end", "succeeded")])
        shop.wait_live({s: "1.0.0" for s in services})

        # another one rejected: it ends, nothing changes
        before = shop.snapshot()
        r = shop.cli("release", "run", shop.versions_file("minor", "1.1.0"))
        eq(r.returncode, 4, f"release run awaiting approval: {r.stdout}{r.stderr}")
        r = shop.cli("release", "reject", "2", "--reason", "not today")
        eq((r.returncode, r.stdout), (0, "release 2 rejected\n"), f"release reject: {r.stderr}")
        report = shop.wait_ended(2)
        eq((report["state"], report["reason"], report["started_at"]), ("rejected", f"rejected by {ME}: not today", None),
           "the rejected release")
        eq({s["name"]: s["state"] for s in report["steps"]}, {s: "skipped" for s in services}, "its steps")
        r = as_nobody(shop, "release", "approve", "2")
        eq((r.returncode, r.stderr), (1, "cutover release approve: release 2 does not await approval\n"),
           "approving it afterwards")
        after = shop.snapshot()
        eq({k: after[k] for k in ("live", "routing", "deployments", "instances")},
           {k: before[k] for k in ("live", "routing", "deployments", "instances")}, "what the rejected release changed")
        check_audit(shop, 2, [(ME, "release.run", "ok"), (ME, "release.reject", "ok"),
                            ("cutover (automatic)", "release.end", "rejected")])
        eq(c.shutdown_all(), 0, "daemon exit status")


# ---------------------------------------------------------------- secrets

def test_a_secret_never_appears_in_the_report_or_the_commands_logs():
    """auth gets API_TOKEN from the encrypted secrets file; a release's
    command step and its gate both print the value (and the gate fails,
    quoting its command).  The value appears nowhere: not in the report
    (`release run --json`, GET /v1/releases/ID, the state), not in the
    step's and the gate's logs (which hold [redacted:API_TOKEN] instead),
    not in any file under the state directory."""
    services = ["auth", "payment"]
    with cutover(yaml_text=shop_yaml(services, per_service={"auth": "secrets: [API_TOKEN]"})) as c:
        shop = Shop(c, services)
        pub = json.loads(shop.cli_ok("secrets", "keygen", "--json").stdout)["public_key"]
        shop.cli_ok("secrets", "recipients", "add", pub)
        token = "tok-" + os.urandom(16).hex()
        r = subprocess.run([BIN, "secrets", "set", "API_TOKEN", "--config", c.cfg_path], input=token + "\n",
                           capture_output=True, text=True, timeout=30, cwd=c.dir, env=clean_env())
        eq(r.returncode, 0, f"secrets set: {r.stderr}")
        shop.install("1.0.0")
        shop.add("auth", "1.1.0")
        path = shop.release_file("announce", f"""services:
  auth: 1.1.0
steps:
  announce:
    run: echo deploying with {token}
    depends_on: [auth]
gates:
  smoke:
    run: echo smoke test with {token}; sleep 1; exit 2
    read: exit
    after: announce
""")
        p = shop.run_in_background(path)

        def gate_running():
            run = shop.active(2)
            return run if run and any(t.startswith("gate smoke (after group 2)") for t in timeline(run["report"])) \
                else None
        try:
            live = wait_until(gate_running, timeout=30, interval=0.02, what="the gate running")
        finally:
            out, err = p.communicate(timeout=60)
        run = json.loads(out)
        report = run["report"]
        eq((p.returncode, run["state"]), (1, "rolled-back"), f"the release: {report['reason']}")
        eq(report["reason"], "gate smoke failed: exit status 2, expected 0", "the reason")
        stored = shop.stored(2)[1]
        for what, text in (("release run --json", out), ("GET /v1/releases/2", json.dumps(live)),
                           ("the stored report", json.dumps(stored))):
            check(token not in text, f"the secret appears in {what}")
        step = steps_by_name(stored)["announce"]
        eq((step["state"], step["run"]), ("kept", "echo deploying with [redacted:API_TOKEN]"), "the step")
        eq(steps_by_name(live["report"])["announce"]["run"], step["run"], "the step, as the daemon showed it")
        # (the value itself is never printed: "<the secret>" in a message)
        for what, log, text in (("the step's log", step["output"], "deploying with [redacted:API_TOKEN]\n"),
                                ("the gate's log", os.path.join(os.path.dirname(step["output"]), "gate-smoke.log"),
                                 "smoke test with [redacted:API_TOKEN]\n")):
            eq(open(log).read().replace(token, "<the secret>"), text, what)
        leaks = subprocess.run(["grep", "-rlF", token, f"{c.dir}/state"], capture_output=True, text=True).stdout
        eq(leaks, "", "files under the state directory that hold the secret")
        eq(c.shutdown_all(), 0, "daemon exit status")
