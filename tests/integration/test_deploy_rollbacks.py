"""`cutover rollback` again and again, as an operator uses it: each one
goes back one more version that served (a deploy that failed or was rolled
back never counts), the answer survives a kill -9 of the daemon, and when
there is nothing to go back to the refusal says the true reason (the first
version ever deployed; a release pruned from the store).  The rule is in
docs/internals/deploy.md ("Rollback")."""
import json
import os
import time

from harness import *
from shopenv import *

FAST = YAML.replace("watch: 3s", "watch: 0s")

def rollback_to(c):
    return managed(c).get("rollback_to")


def rollback(c):
    """`cutover rollback shop --json`: (exit code, the deployment or None, stderr)."""
    r = cli(c, "rollback", "shop", "--json")
    try:
        dep = json.loads(r.stdout)
    except ValueError:
        dep = None
    return r.returncode, dep, r.stderr


def test_repeated_rollbacks_step_back_through_the_versions_that_served():
    with cutover(yaml_text=FAST) as c:
        add_releases(c, "1.0.0", "1.1.0", "1.2.0")
        for v in ("1.0.0", "1.1.0", "1.2.0"):
            eq(cli(c, "deploy", "shop", v).returncode, 0, f"deploy {v}")
        eq(rollback_to(c), "1.1.0", "rollback_to after three deploys")

        rc, dep, err = rollback(c)
        eq((rc, dep and dep["version"], dep and dep["phase"]), (0, "1.1.0", "done"), f"first rollback: {dep} {err}")
        eq(version_served(c.port), "1.1.0", "after the first rollback")
        eq(rollback_to(c), "1.0.0", "rollback_to after the first rollback")

        # the answer comes from the state: the same after a kill -9
        os.kill(c.pid, 9)
        c.proc.wait(10)
        restart_daemon(c)
        eq(rollback_to(c), "1.0.0", "rollback_to after the daemon's restart")

        # 1.0.0 is no longer warm: started from the store, then switched to
        with Load(c.port, clients=2) as load:
            rc, dep, err = rollback(c)
        eq((rc, dep and dep["version"], dep and dep["phase"]), (0, "1.0.0", "done"), f"second rollback: {dep} {err}")
        check([e["phase"] for e in dep["events"]][:3] == ["starting", "health-checking", "healthy"],
              f"started and health-checked: {dep['events']}")
        eq(load.failures, [], "failed requests during the second rollback")
        eq(version_served(c.port), "1.0.0", "after the second rollback")
        eq(rollback_to(c), None, "rollback_to at the first version")

        # nothing older: the refusal says why, nothing changes
        rc, dep, err = rollback(c)
        eq(rc, 1, f"third rollback: {dep} {err}")
        check("1.0.0 is the first version it ran" in err, f"the reason: {err!r}")
        check("nothing was deployed before" not in err, f"the old, wrong reason: {err!r}")
        eq(version_served(c.port), "1.0.0", "after the refused rollback")

        rows = history(c)
        eq([(x["from_version"], x["to_version"], x["kind"], x["state"]) for x in rows[:2]],
           [("1.1.0", "1.0.0", "rollback", "done"), ("1.2.0", "1.1.0", "rollback", "done")], "the rollbacks")
        eq(c.shutdown_all(), 0, "daemon exit status after cutover shutdown --stop-services")
        eq(processes_of(c.dir), [], "instances left after the daemon stopped")


def test_rollback_after_an_automatic_rollback():
    """A deploy rolled back by cutover in its watch window never served as
    known-good: `cutover rollback` then goes back to the version before
    the one that serves (it used to say there was nothing before it)."""
    with cutover(yaml_text=YAML) as c:
        add_releases(c, "1.0.0", "1.1.0")
        add_script_release(c, "2.0.0", DIES_IN_THE_WATCH)
        eq(cli(c, "deploy", "shop", "1.0.0").returncode, 0, "deploy 1.0.0")
        eq(cli(c, "deploy", "shop", "1.1.0").returncode, 0, "deploy 1.1.0")
        r = cli(c, "deploy", "shop", "2.0.0", "--json")
        dep = json.loads(r.stdout)
        eq((r.returncode, dep["phase"]), (1, "rolled-back"), f"2.0.0 rolled back by cutover: {dep['reason']}")
        eq(version_served(c.port), "1.1.0", "after the automatic rollback")
        eq(rollback_to(c), "1.0.0", "rollback_to after the automatic rollback")
        rc, dep, err = rollback(c)
        eq((rc, dep and dep["version"], dep and dep["phase"]), (0, "1.0.0", "done"), f"rollback: {dep} {err}")
        eq(version_served(c.port), "1.0.0", "after the rollback")
        rows = history(c)
        eq([(x["to_version"], x["kind"], x["state"]) for x in rows[:2]],
           [("1.0.0", "rollback", "done"), ("2.0.0", "deploy", "rolled-back")], "history")
        eq(c.shutdown_all(), 0, "daemon exit status after cutover shutdown --stop-services")
        eq(processes_of(c.dir), [], "instances left after the daemon stopped")


def test_rollback_to_a_pruned_release_says_so():
    """The version to go back to whose release was pruned from the store:
    the rollback fails with that reason and traffic stays where it is."""
    yaml = FAST.replace("rollback_window: 60s", "rollback_window: 0s")
    with cutover(yaml_text=yaml) as c:
        add_releases(c, "1.0.0", "1.1.0", "1.2.0")
        for v in ("1.0.0", "1.1.0", "1.2.0"):
            eq(cli(c, "deploy", "shop", v).returncode, 0, f"deploy {v}")
        r = cli(c, "release", "prune", "shop", "--keep", "1", "--state-dir", f"{c.dir}/state", "--json")
        eq(r.returncode, 0, f"prune: {r.stdout}{r.stderr}")
        pruned = sorted(x["version"] for x in json.loads(r.stdout)["deleted"])
        eq(pruned, ["1.0.0"], "pruned: not the live version, nor the one a rollback goes back to")
        rc, dep, err = rollback(c)
        eq((rc, dep and dep["version"]), (0, "1.1.0"), f"rollback to 1.1.0: {dep} {err}")
        rc, dep, err = rollback(c)
        eq((rc, dep and dep["version"], dep and dep["phase"]), (1, "1.0.0", "failed"), f"to 1.0.0: {dep} {err}")
        check("its release was removed from the store" in dep["reason"] and "release add shop 1.0.0" in dep["reason"],
              f"the reason: {dep['reason']!r}")
        eq(version_served(c.port), "1.1.0", "traffic stays on 1.1.0")
        eq(c.shutdown_all(), 0, "daemon exit status after cutover shutdown --stop-services")
        eq(processes_of(c.dir), [], "instances left after the daemon stopped")
