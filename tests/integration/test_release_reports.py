"""Release reports, release notes and the audit/history filters through the
command line (issue 12, points 4 and 7): `cutover release list`, `cutover
release show ID [--json | --markdown]`, `cutover release notes ID
[--template FILE] [-o FILE]`, and `cutover history` / `cutover audit` with
--env, --service, --release, --since and --until.  No daemon: these verbs
read the state directly.

The state is made by the real CLI (`cutover release add` creates state.db
and the release store, with real release directories holding changelogs;
`cutover secrets` and `cutover release add` under two environments write
the audit rows).  The runs of release files are rows of the table
release_runs that the daemon's release runner writes; here they are
inserted with Python's sqlite3 in that stored format: the columns, and the
report as the JSON document of docs/internals/releases.md ("The report").
Likewise a few deployments rows tagged with their release run
(deployments.release_id), as the daemon records a release's deploys.
"""
import calendar
import datetime
import re
import shutil
import sqlite3
import time

from harness import *


def ms(iso):
    """Unix ms of an ISO time in UTC ("2026-11-01T10:00:00")."""
    return calendar.timegm(datetime.datetime.fromisoformat(iso).timetuple()) * 1000


def iso_ms(t):
    """Unix time t (float seconds) as `cutover audit` prints it."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


CONFIG = """listen: 127.0.0.1:18989
state_dir: state
services:
  auth:
    run: ./auth --port ${PORT}
  payment:
    run: ./payment --port ${PORT}
    changelog: docs/NEWS.md
  order:
    run: ./order --port ${PORT}
"""

# auth: sections for two versions; the notes of a release to 1.1.0 hold
# only 1.1.0's
AUTH_CHANGELOG = """# Changelog

## [1.1.0] - 2026-12-01

### Added
- sign-in with passkeys

## [1.0.0] - 2026-11-01

- first release of auth
"""

# payment: no version headings: the whole file (docs/NEWS.md, as configured)
PAYMENT_NEWS = "Payment news\n\n* refunds are instant now\n"

SPRING = {
    "id": 2, "name": "spring-sale", "env": "prod",
    "file": "/srv/releases/spring.yml", "dir": "/srv/releases",
    "state": "rolled-back",
    "reason": "order: the deploy ended aborted: error rate 12.50% of 2.0.0 > 5.00%",
    "started_by": "alice", "started_uid": 1000,
    "approved_by": "bob", "approved_uid": 1001,
    "requested_at": ms("2026-12-01T08:59:00"), "started_at": ms("2026-12-01T09:00:00"),
    "finished_at": ms("2026-12-01T09:01:30"), "duration_ms": 90000,
    "concurrency": 4,
    "plan": {"groups": [["auth", "payment"], ["order"], ["cdn"]]},
    "gates": [
        {"name": "unit", "read": "summary", "when": "before", "command": "make test",
         "threshold": {"min_tests": 1, "max_failed": 0, "min_pass_rate_percent": 100.0},
         "passed": True, "reason": "41 passed, 0 failed (at least 1 test)",
         "exit_code": 0, "signal": 0, "timed_out": False, "started_at": ms("2026-12-01T09:00:00"),
         "finished_at": ms("2026-12-01T09:00:00") + 800, "duration_ms": 800,
         "tests": {"tests": 41, "passed": 41, "failed": 0, "errors": 0, "skipped": 0, "pass_rate_percent": 100.0},
         "point": "before"},
        {"name": "coverage", "read": "coverage", "when": "before", "command": "gcovr --json-summary",
         "file": "coverage.json", "threshold": {"coverage": "lines", "min_coverage_percent": 80.0},
         "passed": False, "reason": "lines 71.4% < 80.0%", "exit_code": 0, "signal": 0, "timed_out": False,
         "started_at": ms("2026-12-01T09:00:01"), "finished_at": ms("2026-12-01T09:00:02") + 200,
         "duration_ms": 1200, "coverage": {"kind": "lines", "covered": 714, "total": 1000, "percent": 71.4},
         "point": "before"},
        # an older shape: no duration_ms, no figures, no threshold; its times
        {"name": "smoke", "read": "exit", "passed": True, "reason": "exit status 0", "exit_code": 0,
         "started_at": ms("2026-12-01T09:00:21"), "finished_at": ms("2026-12-01T09:00:23") + 500,
         "point": "after order"},
    ],
    "steps": [
        {"name": "auth", "kind": "service", "group": 1, "version": "1.1.0", "from_version": "1.0.0",
         "digest": "8c36d5b6", "strategy": "blue-green", "critical": True,
         "state": "rolled-back", "deployment_id": 12, "rollback_deployment_id": 20,
         "started_at": ms("2026-12-01T09:00:01"), "finished_at": ms("2026-12-01T09:00:13"), "duration_ms": 12000,
         "reason": None,
         "phases": [{"phase": "starting", "at": ms("2026-12-01T09:00:01"), "detail": "2 instances"},
                    {"phase": "health-checking", "at": ms("2026-12-01T09:00:03"), "detail": "GET /health"},
                    {"phase": "done", "at": ms("2026-12-01T09:00:13"), "detail": "a|b"},
                    {"phase": "switched", "at": ms("2026-12-01T09:01:20"), "detail": "back on 1.0.0",
                     "rollback": True}]},
        {"name": "payment", "kind": "service", "group": 1, "version": "2.1.0", "from_version": None,
         "digest": "9d47", "strategy": "canary", "critical": False, "state": "rolled-back",
         "started_at": ms("2026-12-01T09:00:01"), "finished_at": ms("2026-12-01T09:00:20"), "duration_ms": 19000,
         "reason": None, "phases": []},
        {"name": "order", "kind": "service", "group": 2, "version": "2.0.0", "from_version": "1.9.0",
         "digest": "aa11", "strategy": "canary", "critical": True, "state": "failed",
         "started_at": ms("2026-12-01T09:00:20"), "finished_at": ms("2026-12-01T09:01:00"), "duration_ms": 40000,
         "reason": "error rate 12.50% of 2.0.0 > 5.00%", "phases": []},
        {"name": "cdn", "kind": "command", "group": 3, "state": "skipped"},
    ],
    "rollbacks": [
        {"name": "payment", "kind": "service", "at": ms("2026-12-01T09:01:10"), "result": "ok",
         "detail": "back to nothing (deployment 21)"},
        {"name": "auth", "kind": "service", "at": ms("2026-12-01T09:01:20"), "result": "ok",
         "detail": "instant rollback to 1.0.0 (deployment 20)"},
    ],
    "traffic": {
        "requests": 24110, "failed": 0,
        "services": {"auth": {"1.0.0": {"requests": 12000, "failed": 0}, "1.1.0": {"requests": 110, "failed": 0}},
                     "order": {"1.9.0": {"requests": 12000, "failed": 0}}}},
    "timeline": [{"at": ms("2026-12-01T09:00:00") + 800, "text": "gate unit passed: 41 passed, 0 failed"}],
}


def small_run(rid, name, env, state, started, finished, steps=()):
    r = {"id": rid, "name": name, "env": env, "file": f"/srv/{name}.yml", "dir": "/srv", "state": state,
         "reason": None, "started_by": "carol", "started_uid": 1002, "approved_by": None, "approved_uid": None,
         "requested_at": started, "started_at": started, "finished_at": finished,
         "duration_ms": finished - started if finished else None, "concurrency": 4, "plan": {},
         "gates": [], "steps": list(steps), "rollbacks": [], "timeline": [],
         "traffic": {"requests": 10, "failed": 1, "services": {}}}
    return r


class Sandbox:
    """A directory with cutover.yml and the overlays of staging and prod
    (the same state directory), and the CLI run there."""

    def __enter__(self):
        self.root = tempfile.mkdtemp(prefix="cutover-reports-")
        self.write("cutover.yml", CONFIG)
        self.write("cutover.staging.yml", "listen: 127.0.0.1:18988\n")
        self.write("cutover.prod.yml", "listen: 127.0.0.1:18987\n")
        return self

    def __exit__(self, *exc):
        for dirpath, dirnames, _ in os.walk(self.root):
            for d in dirnames:
                p = os.path.join(dirpath, d)
                if not os.path.islink(p):
                    os.chmod(p, 0o755)
        shutil.rmtree(self.root)

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def write(self, name, content):
        p = self.path(name)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write(content)
        return p

    def cli(self, *args, input=None):
        e = {k: v for k, v in os.environ.items() if not k.startswith("CUTOVER_")}
        return subprocess.run([BIN, *args], input=input, capture_output=True, text=True, timeout=30, env=e,
                              cwd=self.root)

    def ok(self, *args, input=None):
        r = self.cli(*args, input=input)
        eq(r.returncode, 0, f"exit status of cutover {' '.join(args)} (stderr {r.stderr!r})")
        return r.stdout

    def fails(self, args, code, message):
        r = self.cli(*args)
        eq(r.returncode, code, f"exit status of cutover {' '.join(args)} (stdout {r.stdout!r}, stderr {r.stderr!r})")
        check(message in r.stderr, f"cutover {' '.join(args)}: expected {message!r} in {r.stderr!r}")
        return r

    def release(self, service, version, files, *extra):
        """A real release directory added with `cutover release add`."""
        src = self.path("src", f"{service}-{version}")
        for name, content in files.items():
            self.write(os.path.join(src, name), content)
        self.ok("release", "add", service, version, src, *extra)

    def db(self):
        return sqlite3.connect(self.path("state", "state.db"))

    def insert_run(self, report):
        """A release_runs row as the daemon's release runner stores it."""
        db = self.db()
        try:
            db.execute("INSERT INTO release_runs (id, name, env, state, started_by, started_uid, started_at,"
                       " finished_at, report) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (report["id"], report["name"], report["env"], report["state"], report["started_by"],
                        report["started_uid"], report["started_at"], report["finished_at"], json.dumps(report)))
            db.commit()
        finally:
            db.close()


class ReportsSandbox(Sandbox):
    """auth 1.0.0 and 1.1.0 (with CHANGELOG.md), payment 2.1.0 (docs/NEWS.md),
    order 2.0.0 (no changelog); runs 1 (staging), 2 (SPRING, prod), 3 (prod,
    still running)."""

    def __enter__(self):
        super().__enter__()
        self.release("auth", "1.0.0", {"auth": "v1\n", "CHANGELOG.md": AUTH_CHANGELOG})
        self.release("auth", "1.1.0", {"auth": "v2\n", "CHANGELOG.md": AUTH_CHANGELOG})
        self.release("payment", "2.1.0", {"payment": "p\n", "docs/NEWS.md": PAYMENT_NEWS})
        self.release("order", "2.0.0", {"order": "o\n"})
        self.insert_run(small_run(1, "autumn", "staging", "succeeded", ms("2026-11-01T10:00:00"),
                                  ms("2026-11-01T10:00:42"),
                                  [{"name": "auth", "kind": "service", "group": 1, "version": "1.0.0",
                                    "from_version": None, "state": "done", "phases": []}]))
        self.insert_run(SPRING)
        now = int(time.time() * 1000)
        self.insert_run(small_run(3, "hotfix", "prod", "running", now - 5000, None))
        return self


def test_list():
    with ReportsSandbox() as sb:
        out = sb.ok("release", "list")
        lines = out.splitlines()
        check(lines[0].split()[:4] == ["ID", "NAME", "ENV", "STATE"], f"header: {lines[0]!r}")
        eq([l.split()[0] for l in lines[1:]], ["3", "2", "1"], "newest first")
        spring = lines[2].split()
        eq(spring[:6], ["2", "spring-sale", "prod", "rolled-back", "2026-12-01T09:00:00.000Z", "1m30s"], "run 2")
        eq(spring[6:], ["alice", "3", "24110/0"], "who started it, services, requests/failed")
        check(lines[1].split()[5] == "-", f"a running release has no duration yet: {lines[1]!r}")

        rows = json.loads(sb.ok("release", "list", "--json"))
        eq([r["id"] for r in rows], [3, 2, 1], "--json ids")
        eq({k: rows[1][k] for k in ("name", "env", "state", "started_by", "approved_by", "duration_ms",
                                     "services", "steps", "requests", "failed")},
           {"name": "spring-sale", "env": "prod", "state": "rolled-back", "started_by": "alice",
            "approved_by": "bob", "duration_ms": 90000, "services": 3, "steps": 4, "requests": 24110,
            "failed": 0}, "run 2 in --json")
        eq((rows[0]["finished_at"], rows[0]["duration_ms"]), (None, None), "the running one")

        def ids(*args):
            return [r["id"] for r in json.loads(sb.ok("release", "list", "--json", *args))]
        eq(ids("--env", "prod"), [3, 2], "--env prod")
        eq(ids("--env", "staging"), [1], "--env staging")
        eq(ids("--env", "qa", "--state-dir", "state"), [], "--env qa")
        eq(ids("--since", "2026-12-01"), [3, 2], "--since a date")
        eq(ids("--since", "2026-11-01T10:00", "--until", "2026-12-01T09:00:00Z"), [1], "--since/--until times")
        eq(ids("--until", "2026-12-01T10:00+01:00"), [1], "--until with an offset (09:00 UTC, not included)")
        eq(ids("--since", "1h"), [3], "--since 1h")
        eq(ids("--limit", "1"), [3], "--limit")
        check("no release runs match" in sb.ok("release", "list", "--since", "1s", "--until", "now", "--env",
                                               "staging"), "nothing matches")

        sb.fails(["release", "list", "--since", "last tuesday"], 2, "--since: expected a date or time in UTC")
        sb.fails(["release", "list", "--since", "2026-12-02", "--until", "2026-12-01"], 2,
                 "--until must come after --since")
        sb.fails(["release", "list", "--limit", "0"], 2, "--limit: expected a positive number")
        sb.fails(["release", "list", "3"], 2, "unexpected argument '3'")
        sb.fails(["release", "list", "--markdown"], 2, "--markdown: only for `cutover release show`")


def test_list_without_state():
    with Sandbox() as sb:
        sb.fails(["release", "list"], 1, "no cutover state in")
        check(not os.path.exists(sb.path("state")), "the state was created by a read-only verb")


def test_show_terminal_json_markdown():
    with ReportsSandbox() as sb:
        # --json: the stored report, exactly (same members, values and order)
        out = sb.ok("release", "show", "2", "--json")
        eq(json.loads(out, object_pairs_hook=list), json.loads(json.dumps(SPRING), object_pairs_hook=list),
           "show --json is the stored report")

        text = sb.ok("release", "show", "2")
        for want in ["release 2  spring-sale  env prod  rolled-back",
                     "started    2026-12-01T09:00:00.000Z by alice (uid 1000)",
                     "approved   by bob (uid 1001)",
                     "finished   2026-12-01T09:01:30.000Z after 1m30s",
                     "reason     order: the deploy ended aborted: error rate 12.50% of 2.0.0 > 5.00%",
                     "traffic    24110 requests, 0 failed"]:
            check(want in text, f"{want!r} in the header:\n{text}")
        check(re.search(r"PASSED\s+unit\s+before\s+summary\s+800ms\s+41 passed, 0 failed", text), text)
        check("tests: tests 41, passed 41, failed 0, errors 0, skipped 0, pass_rate_percent 100\n" in text, text)
        check("threshold: min_tests 1, max_failed 0, min_pass_rate_percent 100\n" in text, text)
        check(re.search(r"FAILED\s+coverage\s+before\s+coverage\s+1\.2s\s+lines 71\.4% < 80\.0%", text), text)
        check("coverage: kind lines, covered 714, total 1000, percent 71.4\n" in text, text)
        check("threshold: coverage lines, min_coverage_percent 80\n" in text, text)
        check(re.search(r"PASSED\s+smoke\s+after order\s+exit\s+2\.5s\s+exit status 0\n", text), text)
        check(re.search(r"1\s+auth\s+service\s+1\.0\.0 -> 1\.1\.0\s+rolled-back\s+12\.0s", text), text)
        check(re.search(r"1\s+payment\s+service\s+none -> 2\.1\.0\s+rolled-back", text), text)
        check(re.search(r"2\s+order\s+service\s+1\.9\.0 -> 2\.0\.0\s+failed\s+40\.0s\s+error rate 12\.50%", text),
              text)
        check(re.search(r"3\s+cdn\s+command\s+exit -\s+skipped", text), text)
        # phases: offset from the step's start, how long each lasted
        check(re.search(r"\+0ms\s+starting\s+2\.0s\s+2 instances", text), text)
        check(re.search(r"\+2\.0s\s+health-checking\s+10\.0s\s+GET /health", text), text)
        check(re.search(r"\+1m19s\s+rollback: switched\s+back on 1\.0\.0", text), text)
        check(re.search(r"auth\s+1\.1\.0\s+110\s+0", text) and re.search(r"order\s+1\.9\.0\s+12000\s+0", text), text)
        rb = text.split("rollbacks (in the order they ran)\n")[1]
        check(rb.index("payment") < rb.index("instant rollback to 1.0.0 (deployment 20)"), rb)
        check("gate unit passed: 41 passed, 0 failed" in text, "timeline")

        md = sb.ok("release", "show", "2", "--markdown")
        check(md.startswith("# Release 2: spring-sale\n"), md[:80])
        for want in ["| State | **rolled-back** |", "| Approved by | bob |",
                     "| Finished | 2026-12-01T09:01:30.000Z (1m30s) |", "| Requests | 24110 (0 failed) |",
                     "## Gates", "| unit | before | summary | passed | 41 passed, 0 failed (at least 1 test) |",
                     "| coverage | before | coverage | **failed** | lines 71.4% < 80.0% | coverage: kind lines, "
                     "covered 714, total 1000, percent 71.4 | coverage lines, min_coverage_percent 80 | 1.2s |",
                     "| 1 | auth | service | 1.0.0 -> 1.1.0 | rolled-back | 12.0s | - |",
                     "### auth", "| health-checking | 2026-12-01T09:00:03.000Z | 10.0s | GET /health |",
                     "| done | 2026-12-01T09:00:13.000Z | 1m07s | a\\|b |",  # a "|" escaped in a cell
                     "| rollback: switched | 2026-12-01T09:01:20.000Z | - | back on 1.0.0 |",
                     "## Traffic", "| auth | 1.0.0 | 12000 | 0 |",
                     "## Rollbacks", "| auth | service | ok | instant rollback to 1.0.0 (deployment 20) |",
                     "## Timeline", "gate unit passed: 41 passed, 0 failed"]:
            check(want in md, f"{want!r} in the Markdown:\n{md}")

        # a run still going
        check("finished   not yet" in sb.ok("release", "show", "3"), "running")

        sb.fails(["release", "show", "99"], 1, "no release run 99 in")
        sb.fails(["release", "show", "two"], 2, "expected a release run id (a positive number), got 'two'")
        sb.fails(["release", "show"], 2, "expected ID, got 0 arguments")
        sb.fails(["release", "show", "2", "--json", "--markdown"], 2, "--json and --markdown: choose one")
        sb.fails(["release", "show", "2", "--since", "1h"], 2, "only for `cutover release list`")
        r = sb.cli("release", "show", "99", "--json")
        eq(json.loads(r.stdout)["ok"], False, "an error with --json is JSON")


def test_notes_default_template_and_changelogs():
    with ReportsSandbox() as sb:
        notes = sb.ok("release", "notes", "2")
        check(notes.startswith("# spring-sale (prod)\n\nRelease 2: **rolled-back**. Started 2026-12-01T09:00:00.000Z"
                               " by alice, approved by bob; finished 2026-12-01T09:01:30.000Z after 1m30s.\n"),
              notes[:300])
        for want in ["> order: the deploy ended aborted: error rate 12.50% of 2.0.0 > 5.00%",
                     "| Service | Before | After | Strategy | Result |",
                     "| auth | 1.0.0 | 1.1.0 | blue-green | rolled-back |",
                     "| payment | (new) | 2.1.0 | canary | rolled-back |",
                     "| order | 1.9.0 | 2.0.0 | canary | failed |",
                     "- **cdn**: skipped",
                     "During the release the proxy served 24110 requests, 0 of them failed.",
                     "- **unit** (before, summary): passed: 41 passed, 0 failed (at least 1 test) "
                     "[tests: tests 41, passed 41, failed 0, errors 0, skipped 0, pass_rate_percent 100]",
                     "- **coverage** (before, coverage): FAILED: lines 71.4% < 80.0%",
                     "- **smoke** (after order, exit): passed: exit status 0\n",
                     "## Rollbacks", "- auth (service): ok: instant rollback to 1.0.0 (deployment 20)",
                     "## Changelogs",
                     # auth: only the section of 1.1.0, the version released
                     "### auth 1.1.0\n\n### Added\n- sign-in with passkeys\n",
                     # payment: docs/NEWS.md (services.payment.changelog), whole: no version headings
                     "### payment 2.1.0\n\nPayment news\n\n* refunds are instant now\n"]:
            check(want in notes, f"{want!r} in the notes:\n{notes}")
        check("first release of auth" not in notes, f"1.0.0's section in the notes of 1.1.0:\n{notes}")
        check("### order" not in notes, "order has no changelog")

        # the run of auth 1.0.0: that version's section
        first = sb.ok("release", "notes", "1")
        check("### auth 1.0.0\n\n- first release of auth\n" in first and "passkeys" not in first, first)
        check("No gates." in first, first)

        # -o FILE: written there, whole
        out = sb.path("notes-2.md")
        r = sb.cli("release", "notes", "2", "-o", out)
        eq((r.returncode, r.stdout), (0, ""), f"notes -o: {r.stderr}")
        with open(out) as f:
            eq(f.read(), notes, "the file holds the notes")
        j = json.loads(sb.ok("release", "notes", "2", "--json"))
        eq((j["id"], j["notes"], j["file"]), (2, notes, None), "notes --json")


CUSTOM = """{{! release notes of the shop }}
Release {{name}} to {{env}}: {{state}}
{{#services}}
* {{name}} {{#new}}new at{{/new}}{{^new}}{{from_version}} ->{{/new}} {{version}}{{#changelog}} (changelog: {{changelog_file}}){{/changelog}}
{{/services}}
{{#gates}}
gate {{name}}: {{verdict}}
{{/gates}}
Started by {{started_by}}{{#approved_by}}, approved by {{approved_by}}{{/approved_by}}.
"""


def test_notes_custom_templates():
    with ReportsSandbox() as sb:
        tpl = sb.write("notes.tpl.md", CUSTOM)
        sb.write("cutover.yml", CONFIG + f"release:\n  notes_template: {tpl}\n")
        want = ("Release spring-sale to prod: rolled-back\n"
                "* auth 1.0.0 -> 1.1.0 (changelog: CHANGELOG.md)\n"
                "* payment new at 2.1.0 (changelog: docs/NEWS.md)\n"
                "* order 1.9.0 -> 2.0.0\n"
                "gate unit: passed\n"
                "gate coverage: FAILED\n"
                "gate smoke: passed\n"
                "Started by alice, approved by bob.\n")
        eq(sb.ok("release", "notes", "2"), want, "notes from release.notes_template")

        # --template wins over the configuration
        other = sb.write("other.md", "{{name}} by {{started_by}}\n")
        eq(sb.ok("release", "notes", "2", "--template", other), "spring-sale by alice\n", "--template FILE")

        # an unknown placeholder: an error naming the file and the line, nothing rendered
        bad = sb.write("bad.md", "# {{name}}\n{{#services}}\n- {{nmae}} {{version}}\n{{/services}}\n")
        r = sb.fails(["release", "notes", "2", "--template", bad], 2,
                     f"{bad}:3: unknown placeholder {{{{nmae}}}} (known here: name, version, from_version,")
        eq(r.stdout, "", "nothing rendered")
        r = sb.cli("release", "notes", "2", "--template", bad, "--json")
        j = json.loads(r.stdout)
        eq((r.returncode, j["ok"], j["template"]), (2, False, bad), "--json error")
        sb.fails(["release", "notes", "2", "--template", sb.write("open.md", "{{#gates}}\n{{name}}\n")], 2,
                 "open.md:1: {{#gates}} is not closed (expected {{/gates}})")
        sb.fails(["release", "notes", "2", "--template", sb.path("missing.md")], 2,
                 "cannot read the template")
        # the configured template is checked too, even for a run that does not exist
        sb.write("cutover.yml", CONFIG + f"release:\n  notes_template: {bad}\n")
        sb.fails(["release", "notes", "99"], 2, f"{bad}:3: unknown placeholder {{{{nmae}}}}")


def test_audit_and_history_filters():
    """Audit rows from real CLI actions in two environments sharing a state
    directory, then filtered by environment, service and time; deployments
    of release runs filtered by release and environment."""
    with Sandbox() as sb:
        sb.release("auth", "1.0.0", {"auth": "1\n"}, "--env", "staging")
        sb.release("payment", "1.0.0", {"payment": "1\n"}, "--env", "staging")
        time.sleep(0.05)
        mid = time.time()
        time.sleep(0.05)
        sb.release("auth", "1.1.0", {"auth": "2\n"}, "--env", "prod")
        sb.ok("secrets", "keygen", "--env", "prod")
        pub = json.loads(sb.ok("secrets", "keygen", sb.path("laptop.key"), "--json"))["public_key"]
        sb.ok("secrets", "recipients", "add", pub, "--env", "prod")
        sb.ok("secrets", "set", "DB_PASSWORD", "--env", "prod", input="correct horse battery")
        sb.release("order", "1.0.0", {"order": "1\n"})  # no environment

        def rows(*args):
            return [(a["action"], a["target"], a["env"]) for a in json.loads(sb.ok("audit", "--json", *args))]
        staging = [("release.add", "payment@1.0.0", "staging"), ("release.add", "auth@1.0.0", "staging")]
        prod = [("secrets.set", "prod", "prod"), ("secrets.recipients.add", "prod", "prod"),
                ("secrets.keygen", "prod", "prod"), ("release.add", "auth@1.1.0", "prod")]
        eq(rows(), [("release.add", "order@1.0.0", None)] + prod + staging, "every row, newest first")
        eq(rows("--env", "staging"), staging, "--env staging")
        eq(rows("--env", "prod"), prod, "--env prod")
        eq(rows("--service", "auth"), [prod[3], staging[1]], "--service auth")
        eq(rows("auth", "--env", "prod"), [prod[3]], "SERVICE and --env")
        eq(rows("--since", iso_ms(mid)), [("release.add", "order@1.0.0", None)] + prod, "--since")
        eq(rows("--until", iso_ms(mid)), staging, "--until")
        eq(rows("--since", "1h", "--env", "staging"), staging, "--since 1h")
        eq(rows("--until", "1h"), [], "--until 1h ago")
        eq(rows("--release", "1"), [], "no CLI row belongs to a release run")
        table = sb.ok("audit", "--env", "prod").splitlines()
        eq(table[0].split()[:5], ["AT", "WHO", "ENV", "RELEASE", "ACTION"], "the audit table's header")
        eq([l.split()[2:6] for l in table[1:]], [["prod", "-", a, t] for a, t, _ in prod], "the audit table")
        sb.fails(["audit", "auth", "--service", "order"], 2, "two services given")
        sb.fails(["audit", "--release", "x"], 2, "--release: expected a release run id")
        sb.fails(["audit", "--events"], 2, "--events: only for `cutover history`")
        sb.fails(["audit", "--service", "nosuch"], 1, "unknown service 'nosuch'")

        # deployments as the daemon records a release's deploys (release_id), and one outside a release
        sb.insert_run(small_run(1, "autumn", "staging", "succeeded", ms("2026-11-01T10:00:00"),
                                ms("2026-11-01T10:00:42")))
        sb.insert_run(small_run(2, "spring", "prod", "succeeded", ms("2026-12-01T09:00:00"),
                                ms("2026-12-01T09:01:00")))
        db = sb.db()
        # (the env column as the daemon writes it: its environment; deployment 3 is recorded without one,
        # as part of a release run, which gives it the run's)
        for did, service, started, release, env in [(1, "auth", "2026-10-01T00:00:00", None, "prod"),
                                                    (2, "auth", "2026-11-01T10:00:01", 1, "staging"),
                                                    (3, "payment", "2026-11-01T10:00:02", 1, None),
                                                    (4, "auth", "2026-12-01T09:00:01", 2, "prod"),
                                                    (5, "auth", "2026-12-02T00:00:00", None, None)]:
            db.execute("INSERT INTO deployments (id, service, from_version, to_version, strategy, state,"
                       " started_at, finished_at, release_id, env) VALUES (?, ?, NULL, '1.0.0', 'blue-green',"
                       " 'done', ?, ?, ?, ?)", (did, service, ms(started), ms(started) + 1000, release, env))
        db.commit()
        db.close()

        def hist(*args):
            return [(h["id"], h["release_id"], h["env"]) for h in json.loads(sb.ok("history", "--json", *args))]
        eq(hist(), [(5, None, None), (4, 2, "prod"), (3, 1, "staging"), (2, 1, "staging"), (1, None, "prod")],
           "every deployment")
        eq(hist("--release", "1"), [(3, 1, "staging"), (2, 1, "staging")], "--release 1")
        eq(hist("--env", "prod"), [(4, 2, "prod"), (1, None, "prod")],
           "--env prod: what was deployed in prod (not staging's, not one without an environment)")
        eq(hist("--service", "auth", "--env", "staging"), [(2, 1, "staging")], "--service, --env")
        eq(hist("--since", "2026-11-01", "--until", "2026-12-01"), [(3, 1, "staging"), (2, 1, "staging")],
           "--since, --until")
        table = sb.ok("history", "--release", "2")
        check(table.splitlines()[0].split()[6] == "RELEASE" and re.search(r"^4\s+auth\s+-\s+1\.0\.0\s+deploy\s+done\s+2\s",
                                                                     table, re.M),
              table)
