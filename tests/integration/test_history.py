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
        # an older cutover wrote them): the next daemon fills the gaps
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
        eq(c.terminate(timeout=30), 0, "daemon exit status")
