"""`cutover state backup|restore|check`: backups taken while the daemon
deploys under load are whole and consistent (each passes every check once
restored); a restore needs the daemon stopped, and the daemon started on
the restored state shows its history and serves its version; the files
that must not be restored are refused with a sentence (not a database, not
cutover's, a newer schema, damaged), and so is a restore beside a running
daemon; `state check` finds a state broken on purpose."""
import json
import os
import shutil
import sqlite3
import threading
import time

from harness import *
from shopenv import *


TERMINAL = ("done", "rolled-back", "failed", "aborted", "rejected", "expired")


def state(c, *args, state_dir=None):
    return cli(c, "state", *args, "--state-dir", state_dir or f"{c.dir}/state")


def history_rows(c, state_dir):
    r = cli(c, "history", "--state-dir", state_dir, "--json", "--limit", "1000")
    eq(r.returncode, 0, f"history: {r.stderr}")
    return [(h["id"], h["to_version"], h["state"]) for h in json.loads(r.stdout)]


class Deploys:
    """Deploys one after the other in a thread (1.1.0, 1.0.0, 1.1.0, ...)
    until stopped; each must succeed."""

    def __init__(self, c, rounds):
        self.c, self.rounds, self.failures, self.done = c, rounds, [], 0
        self.t = threading.Thread(target=self.run)

    def run(self):
        for i in range(self.rounds):
            v = ["1.1.0", "1.0.0"][i % 2]
            r = cli(self.c, "deploy", "shop", v, timeout=120)
            if r.returncode != 0:
                self.failures.append(f"deploy {v}: {r.returncode} {r.stdout[-300:]}{r.stderr}")
            self.done += 1

    def __enter__(self):
        self.t.start()
        return self

    def __exit__(self, *exc):
        self.t.join(300)


def test_backup_under_load_then_restore():
    with cutover(yaml_text=YAML.replace("watch: 3s", "watch: 1s")) as c:
        add_releases(c, "1.0.0", "1.1.0")
        eq(cli(c, "deploy", "shop", "1.0.0").returncode, 0, "deploy 1.0.0")
        backups = []
        with Load(c.port, clients=3) as load, Deploys(c, 4) as deploys:
            n = 0
            while deploys.t.is_alive() and n < 40:
                n += 1
                f = os.path.join(c.dir, f"backup-{n}.db")
                r = state(c, "backup", f)
                eq(r.returncode, 0, f"backup {n} during deploys: {r.stdout}{r.stderr}")
                check(f" to {f} (" in r.stdout and "schema 5" in r.stdout, f"backup says: {r.stdout}")
                backups.append(f)
                time.sleep(0.4)
        eq(deploys.failures, [], "deploys during the backups")
        eq(load.failures, [], "requests during the backups")
        check(len(backups) >= 5, f"only {len(backups)} backups during the deploys")
        # one self-contained file each, nothing left beside them
        leftovers = [f for f in os.listdir(c.dir) if f.startswith("backup-") and not f.endswith(".db")]
        eq(leftovers, [], "files left beside the backups")
        # the live state, checked beside the running daemon
        r = state(c, "check")
        eq(r.returncode, 0, f"state check beside the daemon: {r.stdout}{r.stderr}")
        check(r.stdout.rstrip().endswith("11 checks, 0 failed"), f"state check says: {r.stdout}")
        # every backup is a consistent snapshot: restored apart, every check passes
        for i, f in enumerate(backups):
            scratch = os.path.join(c.dir, f"scratch-{i}")
            r = state(c, "restore", f, state_dir=scratch)
            eq(r.returncode, 0, f"restore of {f} into a scratch dir: {r.stdout}{r.stderr}")
            r = state(c, "check", state_dir=scratch)
            eq(r.returncode, 0, f"state check of backup {f}: {r.stdout}{r.stderr}")

        # --json: what was saved
        r = state(c, "backup", os.path.join(c.dir, "final.db"), "--json")
        eq(r.returncode, 0, f"backup --json: {r.stderr}")
        saved = json.loads(r.stdout)
        check(saved["ok"] and saved["schema_version"] == 5 and saved["size_bytes"] > 0, f"backup --json: {saved}")
        check(saved["tables"]["deployments"] >= 5, f"deployments saved: {saved['tables']}")
        eq(sorted(m["name"] for m in saved["not_included"]), ["proof.key", "releases"], "not included")

        # a restore beside the running daemon is refused, naming it
        r = state(c, "restore", backups[0])
        eq(r.returncode, 1, f"restore beside the daemon: {r.stdout}{r.stderr}")
        check("is in use by" in r.stderr and f"(pid {c.pid})" in r.stderr and "stop the daemon first" in r.stderr,
              f"restore beside the daemon says: {r.stderr}")

        # stopped: restored, and the daemon started on it shows that history.
        # A backup taken between two deploys if there is one (else one with a
        # deploy in flight, which the restored daemon then ends as aborted)
        histories = [history_rows(c, os.path.join(c.dir, f"scratch-{i}")) for i in range(len(backups))]
        live_now = history_rows(c, f"{c.dir}/state")
        # older than the state it replaces (under ASan the last backups may
        # all come after the last deploy: those are left out)
        older = [i for i, h in enumerate(histories) if len(h) < len(live_now)]
        check(older, f"no backup older than the state it replaces ({len(live_now)} deployments)")
        quiet = [i for i in older if all(row[2] in TERMINAL for row in histories[i])]
        pick = quiet[len(quiet) // 2] if quiet else older[len(older) // 2]
        chosen, expected = backups[pick], histories[pick]
        eq(c.shutdown_all(), 0, "daemon exit status after cutover shutdown --stop-services")
        r = state(c, "restore", chosen)
        eq(r.returncode, 0, f"restore: {r.stdout}{r.stderr}")
        check(f"restored {chosen} into {c.dir}/state/state.db (schema 5)" in r.stdout, f"restore says: {r.stdout}")
        kept = [f for f in os.listdir(f"{c.dir}/state") if f.startswith("state.db.before-restore-")]
        eq(len(kept), 1, f"the previous state kept: {os.listdir(c.dir + '/state')}")
        eq(history_rows(c, f"{c.dir}/state"), expected, "the history after the restore")
        with sqlite3.connect(f"{c.dir}/state/{kept[0]}") as db:
            eq(db.execute("SELECT count(*) FROM deployments").fetchone()[0], len(live_now),
               "deployments in the state kept aside")
        restart_daemon(c)
        m = wait_live_settled(c, timeout=30)
        if quiet:
            last_done = [h for h in expected if h[2] == "done"][0]
            eq(m["live"]["version"], last_done[1], "the version live after the restore")
            eq(version_served(c.port), last_done[1], "the version served after the restore")
        # the restored history, under what the restarted daemon added (a
        # restart of the live version; a deploy in flight in the backup ends)
        hist = history_rows(c, f"{c.dir}/state")[-len(expected):]
        eq([(h[0], h[1]) for h in hist], [(h[0], h[1]) for h in expected], "the deployments the daemon shows")
        for now, then in zip(hist, expected):
            check(now[2] == then[2] or (then[2] not in TERMINAL and now[2] == "aborted"),
                  f"deployment {now[0]}: {then[2]} in the backup, {now[2]} now")
        r = cli(c, "audit", "--state-dir", f"{c.dir}/state", "--json")
        rows = [a for a in json.loads(r.stdout) if a["action"] == "state-restore"]
        eq(len(rows), 1, f"state-restore audit rows: {rows}")
        eq(rows[0]["args"]["file"], chosen, "the restore's audit row names the file")
        eq(c.shutdown_all(), 0, "daemon exit status")


def test_restore_refusals_and_check():
    with cutover(yaml_text=YAML) as c:
        add_releases(c, "1.0.0")
        eq(cli(c, "deploy", "shop", "1.0.0").returncode, 0, "deploy 1.0.0")
        good = os.path.join(c.dir, "good.db")
        eq(state(c, "backup", good).returncode, 0, "backup")
        r = state(c, "backup", good)
        eq(r.returncode, 1, "a second backup to the same file")
        check("exists: give --force to replace it" in r.stderr, f"backup over a file says: {r.stderr}")
        eq(state(c, "backup", good, "--force").returncode, 0, "backup --force")
        eq(c.shutdown_all(), 0, "daemon exit status")

        def copy(name, sql=None):
            path = os.path.join(c.dir, name)
            shutil.copy(good, path)
            if sql:
                with sqlite3.connect(path) as db:
                    db.executescript(sql)
            return path

        notes = os.path.join(c.dir, "notes.txt")
        with open(notes, "w") as f:
            f.write("restore me\n")
        songs = os.path.join(c.dir, "songs.db")
        with sqlite3.connect(songs) as db:
            db.execute("CREATE TABLE songs (title TEXT)")
        truncated = copy("truncated.db")
        with open(truncated, "r+b") as f:
            f.truncate(os.path.getsize(truncated) // 3)
        cases = [
            (notes, "is not a SQLite database"),
            (os.path.join(c.dir, "missing.db"), "No such file or directory"),
            (songs, "is a SQLite database, but not a cutover state (it has no table services)"),
            (copy("newer.db", "PRAGMA user_version = 6"),
             "schema version 6 is newer than this cutover knows (5): restore it with the cutover that wrote it"),
            (copy("orphan.db", "PRAGMA foreign_keys = OFF; INSERT INTO instances (service, version, started_at, state)"
                               " VALUES ('ghost', '1', 1, 'stopped')"), "is damaged: instances row"),
            (truncated, "damaged"),
        ]
        before = open(f"{c.dir}/state/state.db", "rb").read()
        for path, says in cases:
            r = state(c, "restore", path)
            eq(r.returncode, 1, f"restore {os.path.basename(path)}: {r.stdout}{r.stderr}")
            check(says in r.stderr, f"restore {os.path.basename(path)} says {r.stderr!r}, expected {says!r}")
        eq(open(f"{c.dir}/state/state.db", "rb").read(), before, "state.db after the refusals")
        eq([f for f in os.listdir(f"{c.dir}/state") if "restore" in f], [], "files the refusals left")
        r = state(c, "restore", copy("newer2.db", "PRAGMA user_version = 6"), "--json")
        j = json.loads(r.stdout)
        eq((j["ok"], j["exit_code"]), (False, 1), f"--json refusal: {j}")

        # check: a deployment whose state disagrees with its last event
        broken = os.path.join(c.dir, "broken")
        eq(state(c, "restore", good, state_dir=broken).returncode, 0, "restore into a scratch dir")
        with sqlite3.connect(f"{broken}/state.db") as db:
            db.execute("UPDATE deployments SET state = 'failed' WHERE id = 1")
        r = state(c, "check", state_dir=broken)
        eq(r.returncode, 1, f"check of a broken state: {r.stdout}")
        fails = [l for l in r.stdout.splitlines() if l.startswith("FAIL")]
        eq(len(fails), 1, f"failed checks: {r.stdout}")
        check("deployment state = its last event" in fails[0] and "deployment 1 (shop 1.0.0) is failed, but its last "
              "event" in fails[0], f"the failed check: {fails[0]}")
        j = json.loads(state(c, "check", "--json", state_dir=broken).stdout)
        eq((j["ok"], j["failed"]), (False, 1), "check --json")
        # a file cut short
        cut = os.path.join(c.dir, "cut")
        eq(state(c, "restore", good, state_dir=cut).returncode, 0, "restore into a scratch dir")
        size = os.path.getsize(f"{cut}/state.db")
        with open(f"{cut}/state.db", "r+b") as f:
            f.truncate(size // 3)
        r = state(c, "check", state_dir=cut)
        eq(r.returncode, 1, f"check of a truncated state: {r.stdout}{r.stderr}")
        check("FAIL  integrity" in r.stdout, f"check of a truncated state says: {r.stdout}")
        # the state of the test is whole
        r = state(c, "check")
        eq(r.returncode, 0, f"check of the test's state: {r.stdout}")
