"""What the state records of deploys, as an operator reads it: the rows of
`cutover history` (a rollback that succeeded reads as done, a deploy rolled
back as rolled-back, a restart cutover made itself says what it restarted),
and the links between the rows of the SQLite file (each instance names its
release)."""
import json
import os
import sqlite3
import time

from harness import *
from shopenv import *


def state_db(c):
    return sqlite3.connect(os.path.join(c.dir, "state", "state.db"))


def instance_releases(c):
    """(instance id, version, its release_id, the id of its version's release row) of every instance row."""
    with state_db(c) as db:
        return db.execute("SELECT i.id, i.version, i.release_id, r.id FROM instances i"
                          " LEFT JOIN releases r ON r.service = i.service AND r.version = i.version"
                          " ORDER BY i.id").fetchall()


def test_instances_name_their_release():
    """Every instance row links the release row of its version, those a
    deploy starts and those the next daemon starts again; a row an older
    cutover left without the link gets it when it is re-adopted."""
    with cutover(yaml_text=YAML.replace("watch: 3s", "watch: 0s")) as c:
        add_releases(c, "1.0.0", "1.1.0")
        eq(cli(c, "deploy", "shop", "1.0.0").returncode, 0, "deploy 1.0.0")
        eq(cli(c, "deploy", "shop", "1.1.0").returncode, 0, "deploy 1.1.0")
        rows = instance_releases(c)
        eq(len(rows), 2, f"instance rows: {rows}")
        for iid, version, release_id, want in rows:
            check(want is not None, f"no release row for {version}")
            eq(release_id, want, f"instances.release_id of {version} (row {iid})")
        # kill -9, the live instance too, and a row without its link (as
        # an older cutover wrote them): the next daemon fills the gaps.
        # First the end of 1.1.0's deploy must be in the state: the CLI hears
        # "done" on the event stream before the state thread has written it,
        # and a deploy not recorded done is rolled back by the next daemon.
        poll_until(lambda: (lambda h: h[0]["to_version"] == "1.1.0" and h[0]["state"] == "done")(history(c)),
                   timeout=10, interval=0.05, what="deploy 1.1.0 recorded done in the state")
        before = managed(c)
        os.kill(c.pid, 9)
        c.proc.wait(10)
        os.kill(before["live"]["pid"], 9)
        with state_db(c) as db:
            db.execute("UPDATE instances SET release_id = NULL")
        restart_daemon(c)
        wait_live_settled(c)
        deadline = time.time() + 5  # written by the state thread
        while time.time() < deadline and len(instance_releases(c)) < 3:
            time.sleep(0.05)
        rows = instance_releases(c)
        eq(len(rows), 3, f"1.1.0 started again: {rows}")
        by_id = {r[0]: r for r in rows}
        warm = [r for r in rows if r[1] == "1.0.0"][0]
        eq(warm[2], warm[3], "the re-adopted 1.0.0 got its release back")
        new = max(by_id)
        eq((by_id[new][1], by_id[new][2]), ("1.1.0", by_id[new][3]), "the instance started again names its release")
        lost = [r for r in rows if r[1] == "1.1.0" and r[0] != new][0]
        eq(lost[2], None, "the row of the process that was gone is left as it was")
        eq(c.shutdown_all(), 0, "daemon exit status after cutover shutdown --stop-services")
        eq(processes_of(c.dir), [], "instances left after the daemon stopped")


def history_table(c, *args):
    """`cutover history shop` as printed: {id: (FROM, TO, KIND, RESULT)}."""
    r = cli(c, "history", "shop", "--state-dir", f"{c.dir}/state", *args)
    eq(r.returncode, 0, f"history: {r.stderr}")
    lines = r.stdout.splitlines()
    eq(lines[0].split()[:6], ["ID", "SERVICE", "FROM", "TO", "KIND", "RESULT"], "the table's header")
    return {int(l.split()[0]): tuple(l.split()[2:6]) for l in lines[1:] if l[:1].isdigit()}, r.stdout


def test_history_reads_as_what_happened():
    """A rollback that worked reads `rollback done`; a deploy cutover rolled
    back reads `deploy rolled-back`; the restart cutover made after none of
    the live version's instances survived reads `restart` from that version
    to itself, with why in its events; rows an older cutover wrote (an
    instant rollback recorded as rolled-back) read the same."""
    with cutover(yaml_text=YAML.replace("watch: 3s", "watch: 2s")) as c:
        add_releases(c, "1.0.0", "1.1.0")
        add_script_release(c, "2.0.0", DIES_IN_THE_WATCH)
        for args in (("deploy", "shop", "1.0.0"), ("deploy", "shop", "1.1.0"), ("rollback", "shop"),
                     ("deploy", "shop", "1.1.0")):
            r = cli(c, *args)
            eq(r.returncode, 0, f"{' '.join(args)}: {r.stdout}{r.stderr}")
        eq(cli(c, "deploy", "shop", "2.0.0").returncode, 1, "2.0.0 is rolled back by cutover")
        # kill -9 of the daemon and of the live instance: cutover restarts 1.1.0
        live = managed(c)["live"]
        eq(live["version"], "1.1.0", "live before the kill")
        os.kill(c.pid, 9)
        c.proc.wait(10)
        os.kill(live["pid"], 9)
        restart_daemon(c)
        wait_live_settled(c)

        rows, text = history_table(c)
        eq([rows[i] for i in sorted(rows)],
           [("-", "1.0.0", "deploy", "done"), ("1.0.0", "1.1.0", "deploy", "done"),
            ("1.1.0", "1.0.0", "rollback", "done"), ("1.0.0", "1.1.0", "deploy", "done"),
            ("1.1.0", "2.0.0", "deploy", "rolled-back"), ("1.1.0", "1.1.0", "restart", "done")],
           f"history, oldest first:\n{text}")
        restart = history(c)[0]
        eq(restart["events"][0]["detail"],
           "restart of 1.1.0: none of its instances survived the restart of the daemon", "why it was restarted")
        eq(restart["events"][-1]["to_state"], "done", "the restart's result")
        rollback_row = [x for x in history(c) if x["kind"] == "rollback"][0]
        eq([e["to_state"] for e in rollback_row["events"]][-1], "done", "the rollback's last event")
        me = __import__("pwd").getpwuid(os.getuid()).pw_name
        check(any((a["actor"], a["action"], a["result"]) == (me, "rollback", "done") for a in audit(c)),
              f"audit of the rollback: {audit(c)[:8]}")
        eq(managed(c)["rollback_to"], "1.0.0", "rollback_to")

        # a state directory as the previous cutover left it: an instant
        # rollback recorded as rolled-back, in its row and its last event
        os.kill(c.pid, 9)
        c.proc.wait(10)
        with state_db(c) as db:
            rid = db.execute("SELECT id FROM deployments WHERE strategy = 'rollback'").fetchone()[0]
            db.execute("UPDATE deployments SET state = 'rolled-back' WHERE id = ?", (rid,))
            db.execute("UPDATE deployment_events SET to_state = 'rolled-back' WHERE deployment_id = ?"
                       " AND to_state = 'done'", (rid,))
        restart_daemon(c)
        again, text = history_table(c)
        eq(again, rows, f"the same history from the older rows:\n{text}")
        eq([e["to_state"] for e in [x for x in history(c) if x["id"] == rid][0]["events"]][-1], "done",
           "the older rollback's last event")
        eq(managed(c)["rollback_to"], "1.0.0", "rollback_to from the older rows")
        eq(c.shutdown_all(), 0, "daemon exit status after cutover shutdown --stop-services")
        eq(processes_of(c.dir), [], "instances left after the daemon stopped")
