"""test_approvals.py - deploys and promotions that wait for a person's
approval (issue 11, point 3): `approval:` in prod's overlay only, the real
daemon and the shop of examples/shop.

* A promotion into prod awaits approval (cutover promote exits 4, saying
  how to approve it; status and history show it); its requester cannot
  approve it (approval.distinct), another user can (the CLI run as
  `nobody` through setpriv, the admin socket opened to it for this test):
  it then starts and is promoted.  Each step audited with its user.
* A request rejected ends `rejected` with the reason and never starts; a
  second decision on it is refused; without distinct the requester may
  approve.
* A request nobody decides ends `expired` when its timeout passes
  (`cutover deploy --wait` follows it there), audited as cutover's; one
  that waits across a kill -9 of the daemon expires at the restart if its
  time ran out meanwhile, and otherwise waits again and can be approved.
"""
import json
import os
import pwd
import re
import subprocess
import time

from harness import *
from envpair import *

ME = pwd.getpwuid(os.getuid()).pw_name


def audit_rows(env):
    return [(a["actor"], a["action"], a["result"]) for a in reversed(env.audit())]


def as_nobody(env, *args):
    """The CLI run as user nobody against env's socket, opened to it."""
    for d in (env.site.dir, env.state):
        os.chmod(d, 0o711)
    os.chmod(env.sock, 0o666)
    return subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", BIN, *args,
                           "--socket", env.sock], capture_output=True, text=True, timeout=30, cwd="/",
                          env=clean_env())


def test_promotion_approved_by_another_user_not_by_its_requester():
    prod_overlay = ("promotion:\n  from: staging\n"
                    "approval:\n  required: true\n  timeout: 1m\n  distinct: true\n")
    with site({"staging": "", "prod": prod_overlay}) as s:
        staging, prod = s["staging"], s["prod"]
        staging.add_release("1.0.0")
        staging.deploy("1.0.0")  # staging requires no approval
        r = s.cli("promote", "shop", "--from", "staging", "--to", "prod")
        eq(r.returncode, 4, f"promote into prod: {r.stdout}{r.stderr}")
        check("deployment 1 awaits approval: cutover approve 1 --env prod" in r.stdout, r.stdout)
        m = prod.managed()
        eq([(a["id"], a["version"], a["requested_by"], a["promoted_from"]) for a in m["awaiting_approval"]],
           [(1, "1.0.0", ME, "staging")], "status: awaiting approval")
        eq((m["live"], m["deploying"]), (None, None), "nothing started")
        text = prod.cli_ok("status").stdout
        check(f"awaiting approval: deployment 1 to 1.0.0, promoted from staging, requested by {ME}" in text, text)
        row = prod.history()[0]
        eq((row["state"], row["promoted_from"]), ("awaiting-approval", "staging"), "history")
        check(row["expires_at"] > row["started_at"] + 55000, f"expires in a minute: {row}")

        r = prod.cli("approve", "1")
        eq(r.returncode, 1, f"approved by its requester: {r.stdout}{r.stderr}")
        check(f"{ME} asked for deployment 1: approval.distinct wants another person to approve it" in r.stderr,
              r.stderr)
        eq(prod.history()[0]["state"], "awaiting-approval", "still awaiting")

        r = as_nobody(prod, "approve", "1")
        eq(r.returncode, 0, f"approved by nobody: {r.stdout}{r.stderr}")
        check(re.search(rf"deployment 1 of shop to 1\.0\.0: approved by nobody after \d+s \(requested by {ME}\)",
                        r.stdout), r.stdout)
        wait_done(prod, "1.0.0")
        eq(prod.served(), "1.0.0", "prod serves the promoted version")
        row = prod.history()[0]
        eq((row["state"], row["digest"]), ("done", staging.releases()["1.0.0"]), "promoted")
        eq([e["to_state"] for e in row["events"]][:2], ["awaiting-approval", "starting"], "its events")
        check(row["events"][1]["detail"].startswith("promotion from staging"), row["events"][1])
        rows = audit_rows(prod)
        for want in ((ME, "promote", "awaiting-approval"), (ME, "approve", "refused"), ("nobody", "approve", "done"),
                     (ME, "promote", "done")):
            check(want in rows, f"audit row {want}: {rows}")
        eq(prod.managed()["awaiting_approval"], [], "nothing awaits")
        print(f"    audit: {rows}")


def test_reject_ends_a_request_unstarted():
    with site({"prod": "approval: required\n"}) as s:
        prod = s["prod"]
        prod.add_release("1.0.0")
        r = prod.cli("deploy", "shop", "1.0.0")
        eq(r.returncode, 4, f"deploy: {r.stdout}{r.stderr}")
        r = prod.cli("deploy", "shop", "1.0.0", "--json")
        eq(r.returncode, 4, f"deploy --json: {r.stdout}{r.stderr}")
        dep = json.loads(r.stdout)
        eq((dep["id"], dep["phase"], dep["awaiting_approval"], dep["exit_code"], dep["approval"]["requested_by"]),
           (2, "awaiting-approval", True, 4, ME), "the JSON of a request")

        r = prod.cli("reject", "1", "--reason", "change freeze")
        eq(r.returncode, 0, f"reject: {r.stdout}{r.stderr}")
        check(f"deployment 1 of shop to 1.0.0: rejected by {ME}: change freeze" in r.stdout, r.stdout)
        r = prod.cli("approve", "1")
        eq(r.returncode, 1, "approving a rejected request")
        check("deployment 1 of shop to 1.0.0 does not await approval: it is rejected" in r.stderr, r.stderr)
        r = prod.cli("reject", "9")
        eq(r.returncode, 1, "rejecting an unknown deployment")
        check("no deployment 9 awaits approval here" in r.stderr, r.stderr)
        eq(prod.managed()["live"], None, "nothing started")
        rows = {row["id"]: row for row in prod.history()}
        eq((rows[1]["state"], rows[1]["reason"]), ("rejected", f"rejected by {ME}: change freeze"), "history")

        r = prod.cli("approve", "2")  # no `distinct`: the requester may approve
        eq(r.returncode, 0, f"approve: {r.stdout}{r.stderr}")
        wait_done(prod, "1.0.0")
        eq(prod.history()[0]["state"], "done", "the approved deploy")
        rows = audit_rows(prod)
        for want in ((ME, "reject", "done"), (ME, "deploy", "rejected"), (ME, "approve", "refused"),
                     (ME, "approve", "done"), (ME, "deploy", "done")):
            check(want in rows, f"audit row {want}: {rows}")
        every = json.loads(prod.cli_ok("audit", "--json").stdout)  # (deployment 9 names no service)
        check(any(a["action"] == "reject" and a["result"] == "refused" and "no deployment 9" in a["detail"]
                  for a in every), f"the refused reject audited: {every[:3]}")


def test_expire_also_across_a_restart():
    with site({"prod": "approval: {required: true, timeout: 2s}\n"}) as s:
        prod = s["prod"]
        prod.add_release("1.0.0")
        t0 = time.time()
        r = prod.cli("deploy", "shop", "1.0.0", "--wait")
        eq(r.returncode, 1, f"deploy --wait: {r.stdout}{r.stderr}")
        check("deployment 1 awaits approval: cutover approve 1 --env prod (waiting for it: --wait)" in r.stdout,
              r.stdout)
        check(re.search(rf"expired: not approved within 2s \(requested by {ME} at \S+\)\s*$", r.stdout), r.stdout)
        check(1.8 < time.time() - t0 < 6, f"expired after its 2 s: {time.time() - t0:.1f}s")
        check(("cutover (automatic)", "expire", "expired") in audit_rows(prod), f"audit: {audit_rows(prod)}")

        eq(prod.cli("deploy", "shop", "1.0.0").returncode, 4, "request 2 (2 s)")
        prod.reload("approval: {required: true, timeout: 1m}\n")
        eq(prod.cli("deploy", "shop", "1.0.0").returncode, 4, "request 3 (1 min)")
        prod.kill9()
        time.sleep(2.5)  # request 2's time runs out while the daemon is down
        prod.start()
        rows = {row["id"]: row for row in prod.history()}
        eq((rows[2]["state"], rows[3]["state"]), ("expired", "awaiting-approval"), "after the restart")
        check("expired while the daemon was down" in prod.log() or "1 expired" in prod.log(), prod.log()[-800:])
        eq([a["id"] for a in prod.managed()["awaiting_approval"]], [3], "request 3 waits again")
        r = prod.cli("approve", "3")
        eq(r.returncode, 0, f"approve after the restart: {r.stdout}{r.stderr}")
        wait_done(prod, "1.0.0")
        eq(prod.history()[0]["state"], "done", "request 3 deployed")
        expired = [a for a in prod.audit() if a["action"] == "expire"]
        eq(len(expired), 2, f"two expiries audited: {expired}")
