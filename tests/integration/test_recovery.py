"""kill -9 of the daemon in every phase of a deploy, and what the next
daemon does (issue 3, point 5; design in docs/internals/deploy.md,
Recovery): no instance orphaned or duplicated, traffic on the last
known-good version, the deployment in flight aborted with its reason, the
warm previous version still warm, nothing recorded lost.

Phases an outside kill cannot hit on purpose (the instant after a phase is
committed) use the daemon's test hook CUTOVER_TEST_CRASH_AT=after:PHASE@VERSION:
the daemon SIGKILLs itself right there."""
import json
import os
import subprocess
import time

from harness import *
from shopenv import *


def crash_daemon_at(point):
    return {"CUTOVER_TEST_CRASH_AT": point}


def wait_dead(proc, what):
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        raise TestFailure(f"the daemon did not die at {what}")
    eq(proc.returncode, -9, f"daemon killed by SIGKILL at {what}")


def settle(c, want, timeout=5.0):
    """Wait until the test's release processes are exactly `want`
    (stopping takes the stop grace at most)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if sorted(processes_of(c.dir)) == sorted(want):
            return
        time.sleep(0.05)
    eq(sorted(processes_of(c.dir)), sorted(want), "release processes running")


def finish(c):
    eq(c.shutdown_all(), 0, "daemon exit status after cutover shutdown --stop-services")
    eq(processes_of(c.dir), [], "instances left after the daemon stopped")


def deploy_in_background(c, version):
    return subprocess.Popen([BIN, "deploy", "shop", version], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL,
                            env={**os.environ, "CUTOVER_SOCKET": f"{c.dir}/state/admin.sock"})


def test_kill9_while_live_keeps_the_warm_previous_version():
    """Deploy done, 1.0.0 warm within its rollback window: after kill -9 the
    next daemon re-adopts both (same pids, nothing started), routes to 1.1.0
    before serving, and a rollback is still instant."""
    with cutover(yaml_text=YAML) as c:
        add_releases(c, "1.0.0", "1.1.0")
        eq(cli(c, "deploy", "shop", "1.0.0").returncode, 0, "deploy 1.0.0")
        eq(cli(c, "deploy", "shop", "1.1.0").returncode, 0, "deploy 1.1.0")
        before = managed(c)
        eq(before["live"]["version"], "1.1.0", "live before")
        eq(before["previous"]["version"], "1.0.0", "warm before")
        live_pid, warm_pid = before["live"]["pid"], before["previous"]["pid"]
        os.kill(c.pid, 9)
        c.proc.wait(10)
        eq(http_get(before["live"]["port"], "/version", host="x")[0], 200,
           "the instance still serves while the daemon is down")
        restart_daemon(c)
        after = managed(c)
        eq((after["live"]["version"], after["live"]["pid"]), ("1.1.0", live_pid), "live re-adopted, not restarted")
        check(after["previous"], f"the warm version was not kept: {after}")
        eq((after["previous"]["version"], after["previous"]["pid"]), ("1.0.0", warm_pid), "warm re-adopted")
        eq(version_served(c.port), "1.1.0", "traffic after the restart")
        settle(c, [live_pid, warm_pid])
        # the rollback window survived: instant, onto the same process
        r = cli(c, "rollback", "shop", "--json")
        eq(r.returncode, 0, f"rollback after the restart: {r.stdout}{r.stderr}")
        dep = json.loads(r.stdout)
        eq(dep["phase"], "done", "instant rollback (no start)")
        eq(version_served(c.port), "1.0.0", "traffic after the rollback")
        eq(managed(c)["live"]["pid"], warm_pid, "rolled back onto the warm process")
        settle(c, [warm_pid])
        # it is supervised again: a deploy under load works and replaces it
        with Load(c.port, clients=2) as load:
            eq(cli(c, "deploy", "shop", "1.1.0").returncode, 0, "deploy after the restart")
        eq(load.failures, [], "failed requests in the deploy after the restart")
        finish(c)


def test_kill9_after_starting_recorded():
    """The daemon dies right after recording a new deployment, before green
    is started: the deployment is aborted, 1.0.0 keeps the traffic, and no
    1.1.0 process exists."""
    with cutover(yaml_text=YAML, env=crash_daemon_at("after:starting@1.1.0")) as c:
        add_releases(c, "1.0.0", "1.1.0")
        eq(cli(c, "deploy", "shop", "1.0.0").returncode, 0, "deploy 1.0.0")
        live_pid = managed(c)["live"]["pid"]
        r = cli(c, "deploy", "shop", "1.1.0")
        check(r.returncode in (1, 3), f"the CLI must report the lost daemon: {r.returncode} {r.stderr}")
        wait_dead(c.proc, "starting")
        restart_daemon(c)
        eq(managed(c)["live"]["pid"], live_pid, "the routed instance was re-adopted")
        eq(version_served(c.port), "1.0.0", "traffic stays on 1.0.0")
        rows = history(c)
        eq((rows[0]["to_version"], rows[0]["state"]), ("1.1.0", "aborted"), "the interrupted deployment")
        check("daemon restarted during starting" in rows[0]["reason"], f"reason: {rows[0]['reason']}")
        eq(rows[1]["state"], "done", "the deployment before it is untouched")
        settle(c, [live_pid])
        finish(c)


def test_kill9_during_health_check_aborts_the_deploy():
    """kill -9 from outside while green is being health-checked: after the
    restart the deployment is recorded as aborted with the phase it reached,
    green is stopped, and traffic stays on the version that had it."""
    with cutover(yaml_text=YAML) as c:
        add_releases(c, "1.0.0")
        add_script_release(c, "1.3.0", "#!/bin/sh\n# never becomes healthy (the shell stays: its command line "
                                       "names the release)\nsleep 60\n")
        eq(cli(c, "deploy", "shop", "1.0.0").returncode, 0, "deploy 1.0.0")
        live_pid = managed(c)["live"]["pid"]
        follower = deploy_in_background(c, "1.3.0")
        wait_deploying(c, "health-checking")
        # the phase is written by the state thread: wait until it is on disk
        deadline = time.time() + 5
        while history(c)[0]["state"] != "health-checking" and time.time() < deadline:
            time.sleep(0.05)
        os.kill(c.pid, 9)
        c.proc.wait(10)
        follower.wait(20)
        check(len(processes_of(c.dir)) == 2, "green survives the daemon (it is not tied to it)")
        restart_daemon(c)
        eq(managed(c)["live"]["pid"], live_pid, "the routed instance was re-adopted")
        eq(version_served(c.port), "1.0.0", "traffic stays on 1.0.0")
        rows = history(c)
        eq(rows[0]["state"], "aborted", "the interrupted deployment")
        check("daemon restarted during health-checking" in (rows[0]["reason"] or ""), f"reason: {rows[0]}")
        settle(c, [live_pid])
        finish(c)


def test_kill9_during_smoke_test():
    """kill -9 while the smoke command runs: the smoke process dies with the
    daemon (nothing would adopt it), green is stopped by the next daemon,
    the deployment is aborted during smoke-testing."""
    smoke = os.path.join("{DIR}", "smoke.sh")
    yaml = YAML.replace("      min_requests: 10\n",
                        f"      min_requests: 10\n      smoke: {smoke} ${{VERSION}} ${{URL}}\n")
    with cutover(yaml_text=yaml) as c:
        pidfile = os.path.join(c.dir, "smoke.pid")
        with open(os.path.join(c.dir, "smoke.sh"), "w") as f:
            # 1.0.0 passes at once; 1.1.0's smoke test takes long enough to be killed in
            f.write(f"#!/bin/sh\n[ \"$1\" = 1.0.0 ] && exit 0\necho $$ > {pidfile}.tmp\n"
                    f"mv {pidfile}.tmp {pidfile}\nexec sleep 30\n")
        os.chmod(os.path.join(c.dir, "smoke.sh"), 0o755)
        add_releases(c, "1.0.0", "1.1.0")
        r = cli(c, "deploy", "shop", "1.0.0")
        eq(r.returncode, 0, f"deploy 1.0.0 (smoke passes): {r.stdout}{r.stderr}")
        live_pid = managed(c)["live"]["pid"]
        follower = deploy_in_background(c, "1.1.0")
        deadline = time.time() + 15
        while not os.path.exists(pidfile) and time.time() < deadline:
            time.sleep(0.02)
        check(os.path.exists(pidfile), "the smoke command of 1.1.0 never ran")
        smoke_pid = int(open(pidfile).read())
        deadline = time.time() + 5  # the phase is written by the state thread
        while history(c)[0]["state"] != "smoke-testing" and time.time() < deadline:
            time.sleep(0.05)
        eq(history(c)[0]["state"], "smoke-testing", "phase recorded before the kill")
        os.kill(c.pid, 9)
        c.proc.wait(10)
        follower.wait(20)
        deadline = time.time() + 5
        while os.path.exists(f"/proc/{smoke_pid}") and time.time() < deadline:
            try:
                if open(f"/proc/{smoke_pid}/stat").read().rsplit(")", 1)[1].split()[0] == "Z":
                    break
            except OSError:
                break
            time.sleep(0.02)
        alive = os.path.exists(f"/proc/{smoke_pid}/stat")
        try:
            alive = alive and open(f"/proc/{smoke_pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            alive = False
        if alive:
            os.kill(smoke_pid, 9)
        check(not alive, "the smoke command outlived the daemon")
        restart_daemon(c)
        eq(managed(c)["live"]["pid"], live_pid, "1.0.0 re-adopted")
        eq(version_served(c.port), "1.0.0", "traffic stays on 1.0.0")
        rows = history(c)
        eq(rows[0]["state"], "aborted", "the interrupted deployment")
        check("during smoke-testing" in rows[0]["reason"] and "1.1.0 stopped" in rows[0]["reason"],
              f"reason: {rows[0]['reason']}")
        settle(c, [live_pid])
        finish(c)


def test_kill9_in_the_switch_instant():
    """The daemon dies in the instant of the switch: once just before the
    switch is committed (the proxy had moved, the record had not), once just
    after (routing and phase committed together, watch window not over).
    Either way the next daemon serves the last known-good 1.0.0 from its
    warm process, stops 1.1.0 and records why."""
    for point, phase in (("before:switched@1.1.0", "health-checking"), ("after:switched@1.1.0", "switched")):
        with cutover(yaml_text=YAML, env=crash_daemon_at(point)) as c:
            add_releases(c, "1.0.0", "1.1.0")
            eq(cli(c, "deploy", "shop", "1.0.0").returncode, 0, "deploy 1.0.0")
            blue_pid = managed(c)["live"]["pid"]
            r = cli(c, "deploy", "shop", "1.1.0")
            check(r.returncode in (1, 3), f"{point}: the CLI must report the lost daemon: {r.returncode}")
            wait_dead(c.proc, point)
            eq(len(processes_of(c.dir)), 2, f"{point}: blue and green outlive the daemon")
            restart_daemon(c)
            m = managed(c)
            eq((m["live"]["version"], m["live"]["pid"]), ("1.0.0", blue_pid), f"{point}: back on the warm 1.0.0")
            eq(version_served(c.port), "1.0.0", f"{point}: traffic")
            rows = history(c)
            eq((rows[0]["to_version"], rows[0]["state"]), ("1.1.0", "aborted"), f"{point}: the deployment")
            check(f"daemon restarted during {phase}" in rows[0]["reason"], f"{point}: reason: {rows[0]['reason']}")
            if phase == "switched":
                check("last known-good" in rows[0]["reason"], f"{point}: reason: {rows[0]['reason']}")
            check(any(e["to_state"] == "switched" for e in rows[0]["events"]) == (phase == "switched"),
                  f"{point}: the switch is recorded exactly when it was committed: {rows[0]['events']}")
            settle(c, [blue_pid])
            # the next deploy is normal
            eq(cli(c, "deploy", "shop", "1.1.0").returncode, 0, f"{point}: deploy after the restart")
            eq(version_served(c.port), "1.1.0", f"{point}: traffic after the new deploy")
            finish(c)


def test_kill9_after_a_rollback_is_recorded():
    """The daemon dies right after a rollback (by hand, in the watch window)
    is committed: the deployment stays rolled-back (nothing re-aborted),
    1.0.0 serves, 1.1.0 is gone; the audit says who did what."""
    yaml = YAML.replace("watch: 3s", "watch: 6s")  # long enough to roll back by hand in it
    with cutover(yaml_text=yaml, env=crash_daemon_at("after:rolled-back@1.1.0")) as c:
        add_releases(c, "1.0.0", "1.1.0")
        eq(cli(c, "deploy", "shop", "1.0.0").returncode, 0, "deploy 1.0.0")
        blue_pid = managed(c)["live"]["pid"]
        follower = deploy_in_background(c, "1.1.0")
        wait_deploying(c, "switched", timeout=15)
        r = cli(c, "rollback", "shop")
        check(r.returncode in (0, 1, 3), f"rollback: {r.returncode} {r.stderr}")
        wait_dead(c.proc, "rolled-back")
        follower.wait(20)
        restart_daemon(c)
        m = managed(c)
        eq((m["live"]["version"], m["live"]["pid"]), ("1.0.0", blue_pid), "1.0.0 serves")
        eq(m["previous"], None, "nothing kept warm after a rollback")
        eq(version_served(c.port), "1.0.0", "traffic")
        rows = history(c)
        eq(rows[0]["state"], "rolled-back", "the rollback survived the crash as recorded")
        check("by hand" in rows[0]["reason"], f"reason: {rows[0]['reason']}")
        settle(c, [blue_pid])
        who = {(a["action"], a["result"]): a["actor"] for a in audit(c)}
        me = __import__("pwd").getpwuid(os.getuid()).pw_name
        eq(who.get(("deploy", "rolled-back")), me, f"audit: who deployed 1.1.0: {who}")
        eq(who.get(("deploy", "done")), me, f"audit: who deployed 1.0.0: {who}")
        # nothing to roll back to any more: a clear refusal, audited too
        r = cli(c, "rollback", "shop")
        eq(r.returncode, 1, f"second rollback: {r.stderr}")
        check("no previous version" in r.stderr, r.stderr)
        check(any(a["action"] == "rollback" and a["result"] == "refused" for a in audit(c)), "refusal audited")
        finish(c)


def test_kill9_with_the_routed_instance_gone():
    """Daemon and the live instance both killed: the next daemon starts the
    routed version again (a new process) and serves it; the warm previous
    version is kept."""
    with cutover(yaml_text=YAML) as c:
        add_releases(c, "1.0.0", "1.1.0")
        eq(cli(c, "deploy", "shop", "1.0.0").returncode, 0, "deploy 1.0.0")
        eq(cli(c, "deploy", "shop", "1.1.0").returncode, 0, "deploy 1.1.0")
        before = managed(c)
        os.kill(c.pid, 9)
        c.proc.wait(10)
        os.kill(before["live"]["pid"], 9)
        restart_daemon(c)
        m = wait_live_settled(c)
        eq(m["live"]["version"], "1.1.0", "the routed version runs again")
        check(m["live"]["pid"] != before["live"]["pid"], "a new process")
        eq(version_served(c.port), "1.1.0", "traffic")
        settle(c, [m["live"]["pid"], before["previous"]["pid"]])
        deadline = time.time() + 5  # the audit row is written by the state thread
        while time.time() < deadline:
            who = [a["actor"] for a in audit(c) if a["action"] == "deploy"]
            if "cutover (automatic)" in who:
                break
            time.sleep(0.05)
        check("cutover (automatic)" in who, f"the restart is audited as cutover's own: {who}")
        finish(c)


def test_cold_rollback_after_the_window():
    """Once the rollback window is over the previous version is stopped;
    `cutover rollback` then starts it again from the store, health-checks
    it and switches, under load, with no failed request."""
    yaml = YAML.replace("rollback_window: 60s", "rollback_window: 1s").replace("watch: 3s", "watch: 1s")
    with cutover(yaml_text=yaml) as c:
        add_releases(c, "1.0.0", "1.1.0")
        eq(cli(c, "deploy", "shop", "1.0.0").returncode, 0, "deploy 1.0.0")
        eq(cli(c, "deploy", "shop", "1.1.0").returncode, 0, "deploy 1.1.0")
        live_pid = managed(c)["live"]["pid"]
        settle(c, [live_pid])  # 1.0.0 stopped at the end of its window
        eq(managed(c)["previous"], None, "no warm version after the window")
        with Load(c.port, clients=3) as load:
            r = cli(c, "rollback", "shop", "--json")
        eq(r.returncode, 0, f"cold rollback: {r.stdout}{r.stderr}")
        dep = json.loads(r.stdout)
        eq((dep["version"], dep["phase"], dep["rollback"]), ("1.0.0", "done", True), "cold rollback result")
        check([e["phase"] for e in dep["events"]][:4] == ["starting", "health-checking", "healthy", "switched"],
              f"it was started and health-checked first: {dep['events']}")
        eq(load.failures, [], "failed requests during the cold rollback")
        eq(version_served(c.port), "1.0.0", "traffic")
        live_pid = managed(c)["live"]["pid"]
        settle(c, [live_pid])
        eq(history(c)[0]["strategy"], "rollback", "recorded as a rollback")
        # after a restart too, a rollback is not a way back to the version rolled back from
        os.kill(c.pid, 9)
        c.proc.wait(10)
        restart_daemon(c)
        m = managed(c)
        eq((m["live"]["pid"], m["previous"], m.get("rollback_to")), (live_pid, None, None), "after the restart")
        r = cli(c, "rollback", "shop")
        eq(r.returncode, 1, f"nothing to roll back to: {r.stdout}{r.stderr}")
        eq(version_served(c.port), "1.0.0", "traffic after the refused rollback")
        finish(c)


def test_sigterm_in_the_watch_window_serves_the_last_known_good_after_restart():
    """A clean stop (SIGTERM) while a new version is still being watched:
    every instance stops, nothing is left running, and the version that
    serves when the daemon starts again is the one before (the new one never
    finished its watch)."""
    yaml = YAML.replace("watch: 3s", "watch: 6s")
    with cutover(yaml_text=yaml) as c:
        add_releases(c, "1.0.0", "1.1.0")
        eq(cli(c, "deploy", "shop", "1.0.0").returncode, 0, "deploy 1.0.0")
        follower = deploy_in_background(c, "1.1.0")
        wait_deploying(c, "switched", timeout=15)
        eq(c.shutdown_all(), 0, "daemon exit status after cutover shutdown --stop-services")
        follower.wait(20)
        eq(processes_of(c.dir), [], "instances left after the daemon stopped")
        rows = history(c)
        eq((rows[0]["to_version"], rows[0]["state"]), ("1.1.0", "failed"), "the watched deployment")
        check("stopped during the watch window" in rows[0]["reason"], f"reason: {rows[0]['reason']}")
        restart_daemon(c)
        wait_live_settled(c)
        eq(version_served(c.port), "1.0.0", "the last known-good version serves after the restart")
        finish(c)
