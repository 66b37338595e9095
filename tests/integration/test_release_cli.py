"""The release store through the command line: `cutover release add`,
`cutover releases`, `cutover release prune` and `cutover release verify`,
run against a temporary state directory (no daemon).  Checks what a user
sees (tables, --json, messages, exit codes) and what lands on disk (the
read-only STORE/SERVICE/DIGEST tree) and in the state (releases, audit)."""
import hashlib
import pwd
import re
import shutil
import sqlite3
import stat
from harness import *


class Sandbox:
    """A temporary directory with a state dir and a sources dir."""

    def __enter__(self):
        self.root = tempfile.mkdtemp(prefix="cutover-release-")
        self.state = os.path.join(self.root, "state")
        self.src = os.path.join(self.root, "src")
        os.mkdir(self.src)
        return self

    def __exit__(self, *exc):
        for dirpath, dirnames, _ in os.walk(self.root):
            for d in dirnames:
                p = os.path.join(dirpath, d)
                if not os.path.islink(p):
                    os.chmod(p, 0o755)
        shutil.rmtree(self.root)

    def cli(self, *args, env=None, state=True):
        e = dict(os.environ)
        e.pop("CUTOVER_STATE_DIR", None)
        e.update(env or {})
        # --state-dir right after the verb: options may come before the arguments
        at = 2 if len(args) > 1 and args[0] == "release" and not args[1].startswith("-") else 1
        args = list(args)
        argv = [BIN, *args[:at], *(["--state-dir", self.state] if state else []), *args[at:]]
        return subprocess.run(argv, capture_output=True, text=True, timeout=30, env=e)

    def file(self, rel, content, mode=0o644):
        p = os.path.join(self.src, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(content if isinstance(content, bytes) else content.encode())
        os.chmod(p, mode)
        return p

    def db(self):
        return sqlite3.connect(os.path.join(self.state, "state.db"))


def ok(r, what):
    eq(r.returncode, 0, f"exit status of {what} (stderr {r.stderr!r})")
    eq(r.stderr, "", f"stderr of {what}")
    return r


def add_json(sb, service, version, path):
    r = ok(sb.cli("release", "add", service, version, path, "--json"), f"release add {service} {version}")
    return json.loads(r.stdout)


def expected_file_digest(name, content, executable=False):
    """The canonical serialization of release.h, computed here independently."""
    data = content.encode()
    rec = f"f {'755' if executable else '644'} {len(data)} {name}".encode() + b"\0" + data
    return hashlib.sha256(b"cutover-release-v1\n" + rec).hexdigest()


def test_add_file_and_list():
    with Sandbox() as sb:
        path = sb.file("shop.sh", "#!/bin/sh\necho 1.0.0\n", 0o755)
        r = ok(sb.cli("release", "add", "shop", "1.0.0", path), "release add")
        digest = expected_file_digest("shop.sh", "#!/bin/sh\necho 1.0.0\n", executable=True)
        check(r.stdout.startswith("added shop 1.0.0\n"), f"add output: {r.stdout!r}")
        check(f"sha256:{digest}" in r.stdout, f"add output lacks the digest {digest}: {r.stdout!r}")

        stored = os.path.join(os.path.realpath(sb.state), "releases", "shop", digest)
        check(f"path    {stored}" in r.stdout, f"add output lacks the path {stored}: {r.stdout!r}")
        eq(os.listdir(stored), ["shop.sh"], "the release directory holds the file under its name")
        eq(stat.S_IMODE(os.stat(stored).st_mode), 0o555, "mode of the release directory")
        eq(stat.S_IMODE(os.stat(os.path.join(stored, "shop.sh")).st_mode), 0o555, "mode of an executable")
        eq(os.listdir(os.path.dirname(stored)), [digest], "nothing else in the service dir (no temp left)")

        r = ok(sb.cli("releases", "shop"), "releases")
        lines = r.stdout.splitlines()
        eq(len(lines), 2, f"table lines: {r.stdout!r}")
        check(re.match(r"VERSION\s+DIGEST\s+SIZE\s+CREATED\s+PATH$", lines[0]), f"table header: {lines[0]!r}")
        check(re.match(r"1\.0\.0\s+" + digest[:12] + r"\s+21 B\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\s+" +
                       re.escape(stored) + "$", lines[1]), f"table row: {lines[1]!r}")

        j = json.loads(ok(sb.cli("releases", "shop", "--json"), "releases --json").stdout)
        eq(j["service"], "shop", "service in --json")
        eq(len(j["releases"]), 1, "releases in --json")
        rel = j["releases"][0]
        eq((rel["version"], rel["digest"], rel["path"], rel["size_bytes"]), ("1.0.0", digest, stored, 21),
           "release in --json")
        check(isinstance(rel["created_at_ms"], int) and rel["created_at"].endswith("Z"), f"times: {rel!r}")

        r = sb.cli("releases", "cart")
        eq(r.returncode, 1, "releases of a service never recorded")
        check("unknown service 'cart'" in r.stderr, f"message: {r.stderr!r}")
        j = json.loads(sb.cli("releases", "cart", "--json").stdout)
        eq((j["ok"], j["exit_code"]), (False, 1), "--json for a service never recorded")


def test_add_directory_read_only():
    with Sandbox() as sb:
        sb.file("app/bin/run", "#!/bin/sh\n", 0o755)
        sb.file("app/share/data.txt", "data\n", 0o600)
        os.symlink("../bin/run", os.path.join(sb.src, "app", "share", "run"))
        j = add_json(sb, "shop", "2.0.0-rc.1+build.5", os.path.join(sb.src, "app"))
        eq(j["existed"], False, "existed on a first add")
        root = j["path"]
        eq(sorted(os.listdir(root)), ["bin", "share"], "release directory contents")
        eq(stat.S_IMODE(os.stat(os.path.join(root, "share")).st_mode), 0o555, "directory mode")
        eq(stat.S_IMODE(os.stat(os.path.join(root, "share", "data.txt")).st_mode), 0o444, "file mode")
        eq(os.readlink(os.path.join(root, "share", "run")), "../bin/run", "symlink kept")
        eq(j["size_bytes"], len("#!/bin/sh\n") + len("data\n"), "size")
        ok(sb.cli("release", "verify", "shop", "2.0.0-rc.1+build.5"), "verify")


def test_idempotent_and_immutable():
    with Sandbox() as sb:
        path = sb.file("app.bin", "one")
        first = add_json(sb, "shop", "1.0.0", path)
        again = add_json(sb, "shop", "1.0.0", path)
        eq(again["existed"], True, "existed on the same content")
        eq((again["digest"], again["path"]), (first["digest"], first["path"]), "same release")
        r = ok(sb.cli("release", "add", "shop", "1.0.0", path), "re-add")
        check(r.stdout.startswith("already present: shop 1.0.0"), f"re-add output: {r.stdout!r}")

        sb.file("app.bin", "two")
        r = sb.cli("release", "add", "shop", "1.0.0", path)
        eq(r.returncode, 1, f"exit status of a conflicting add (stderr {r.stderr!r})")
        check("version already exists with a different digest (immutable)" in r.stderr,
              f"conflict message: {r.stderr!r}")
        check(first["digest"] in r.stderr, f"conflict message names the recorded digest: {r.stderr!r}")
        eq(r.stdout, "", "stdout of a failed add")
        r = sb.cli("release", "add", "shop", "1.0.0", path, "--json")
        eq(r.returncode, 1, "exit status with --json")
        j = json.loads(r.stdout)
        eq((j["ok"], j["exit_code"]), (False, 1), "--json error object")
        check("immutable" in j["error"], f"--json error: {j!r}")
        j = json.loads(ok(sb.cli("releases", "shop", "--json"), "releases").stdout)
        eq([x["digest"] for x in j["releases"]], [first["digest"]], "the recorded release did not change")


# (arguments after `cutover`, words the message must hold); all exit 2
USAGE_ERRORS = [
    (["release", "add", "Shop", "1.0.0", "{src}/a"], ["SERVICE 'Shop'", "invalid service name"]),
    (["release", "add", "-shop", "1.0.0", "{src}/a"], ["unknown option"]),
    (["release", "add", "shop", "01.2.3", "{src}/a"], ["VERSION '01.2.3'", "not a semantic version"]),
    (["release", "add", "shop", "1.2", "{src}/a"], ["VERSION '1.2'"]),
    (["release", "add", "shop", "1.2.3-", "{src}/a"], ["VERSION '1.2.3-'"]),
    (["release", "add", "shop", "v1.2.3", "{src}/a"], ["VERSION 'v1.2.3'", "no 'v' prefix"]),
    (["release", "add", "shop", "1.0.0", "{src}/missing"], ["PATH '{src}/missing'", "No such file"]),
    (["release", "add", "shop", "1.0.0", "/dev/null"], ["/dev/null", "not a regular file or a directory"]),
    (["release", "add", "shop", "1.0.0"], ["expected SERVICE VERSION PATH", "got 2"]),
    (["release", "add", "shop", "1.0.0", "{src}/a", "extra"], ["expected SERVICE VERSION PATH", "got 4"]),
    (["release", "add", "shop", "1.0.0", "{src}/escape"], ["escape/up", "points outside the release"]),
    (["release", "add", "shop", "1.0.0", "{src}/a", "--frob"], ["unknown option '--frob'"]),
    (["release", "prune", "shop"], ["--keep N is required"]),
    (["release", "prune", "shop", "--keep", "0"], ["--keep", "got '0'"]),
    (["release", "prune", "shop", "--keep", "two"], ["--keep", "got 'two'"]),
    (["release", "prune", "shop", "--keep"], ["--keep: missing its value"]),
    (["release", "prune", "SHOP", "--keep", "1"], ["SERVICE 'SHOP'"]),
    (["release", "verify", "shop"], ["expected SERVICE VERSION"]),
    (["release", "frobnicate"], ["unknown action 'frobnicate'"]),
    (["release"], ["usage: cutover release add"]),
    (["releases"], ["expected SERVICE"]),
    (["releases", "a/b"], ["SERVICE 'a/b'"]),
]


def test_usage_and_validation_errors():
    with Sandbox() as sb:
        sb.file("a", "x")
        sb.file("escape/ok", "x")
        os.symlink("../../etc/passwd", os.path.join(sb.src, "escape", "up"))
        bad = []
        for argv, words in USAGE_ERRORS:
            argv = [a.replace("{src}", sb.src) for a in argv]
            r = sb.cli(*argv)
            problems = []
            if r.returncode != 2:
                problems.append(f"exit status {r.returncode}, expected 2")
            problems += [f"message lacks {w!r}" for w in words if w.replace("{src}", sb.src) not in r.stderr]
            if r.stdout:
                problems.append(f"stdout not empty: {r.stdout!r}")
            if problems:
                bad.append(f"{' '.join(argv)}: {'; '.join(problems)} (stderr: {r.stderr.strip()!r})")
        check(not bad, "usage errors:\n  " + "\n  ".join(bad))
        # nothing refused left anything in the store
        store = os.path.join(sb.state, "releases")
        check(not os.path.exists(store) or all(not os.listdir(os.path.join(store, s)) for s in os.listdir(store)),
              f"the store should be empty: {list(os.walk(store))}")
        # --json errors are one JSON object too
        r = sb.cli("release", "add", "shop", "v1", os.path.join(sb.src, "a"), "--json")
        eq(r.returncode, 2, "exit status with --json")
        j = json.loads(r.stdout)
        eq((j["ok"], j["exit_code"]), (False, 2), "--json usage error")


def test_help():
    for argv, want in ((["release", "--help"], "cutover release add SERVICE VERSION PATH"),
                       (["release", "--help"], "cutover release prune SERVICE --keep N"),
                       (["release", "add", "--help"], "usage: cutover release add SERVICE VERSION PATH"),
                       (["releases", "--help"], "usage: cutover releases SERVICE")):
        r = run_cli(*argv)
        eq(r.returncode, 0, f"exit status of {' '.join(argv)}")
        check(want in r.stdout, f"{' '.join(argv)} output: {r.stdout!r}")
    r = run_cli("--help")
    check("release " in r.stdout and "releases " in r.stdout, f"top-level help lists the verbs: {r.stdout!r}")


def test_prune_keeps_newest_and_in_use():
    with Sandbox() as sb:
        versions = ["1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0"]
        paths = {}
        for v in versions:
            paths[v] = add_json(sb, "shop", v, sb.file(f"v/{v}/app", v, 0o755))["path"]
        # 1.1.0 carries traffic (routing), as a daemon would have recorded
        with sb.db() as db:
            db.execute("INSERT INTO routing (service, version, instance_ids, updated_at) VALUES "
                       "('shop', '1.1.0', '[]', 1)")
        db.close()
        r = ok(sb.cli("release", "prune", "shop", "--keep", "2"), "prune")
        check("deleted shop 1.0.0" in r.stdout and "deleted shop 1.2.0" in r.stdout,
              f"prune output names what it deleted: {r.stdout!r}")
        check("2 releases deleted, 3 kept (in use: 1.1.0)" in r.stdout, f"prune summary: {r.stdout!r}")
        for v in ("1.0.0", "1.2.0"):
            check(not os.path.exists(paths[v]), f"{v} directory should be gone")
        for v in ("1.1.0", "1.3.0", "1.4.0"):
            check(os.path.isdir(paths[v]), f"{v} directory should stay")
        j = json.loads(ok(sb.cli("releases", "shop", "--json"), "releases").stdout)
        eq([x["version"] for x in j["releases"]], ["1.1.0", "1.3.0", "1.4.0"], "releases after prune")

        j = json.loads(ok(sb.cli("release", "prune", "shop", "--keep", "1", "--json"), "prune --json").stdout)
        eq([x["version"] for x in j["deleted"]], ["1.3.0"], "deleted (--json)")
        eq(j["kept"], ["1.1.0", "1.4.0"], "kept (--json)")
        eq(j["in_use"], ["1.1.0"], "in use (--json)")
        eq(j["keep"], 1, "keep (--json)")


def test_verify_detects_tampering():
    with Sandbox() as sb:
        sb.file("app/index.html", "<h1>shop</h1>\n")
        j = add_json(sb, "shop", "1.0.0", os.path.join(sb.src, "app"))
        r = ok(sb.cli("release", "verify", "shop", "1.0.0"), "verify")
        eq(r.stdout, f"shop 1.0.0: ok (sha256:{j['digest']})\n", "verify output")
        target = os.path.join(j["path"], "index.html")
        os.chmod(target, 0o644)
        with open(target, "a") as f:
            f.write("<script>evil()</script>\n")
        r = sb.cli("release", "verify", "shop", "1.0.0")
        eq(r.returncode, 1, f"verify of a tampered release (stderr {r.stderr!r})")
        check("was modified" in r.stderr and j["digest"] in r.stderr, f"verify message: {r.stderr!r}")
        r = sb.cli("release", "verify", "shop", "9.0.0")
        eq(r.returncode, 1, "verify of an unknown version")
        check("shop 9.0.0: no such release" in r.stderr, f"unknown version message: {r.stderr!r}")


def test_state_dir_from_environment_and_audit():
    with Sandbox() as sb:
        path = sb.file("app.bin", "x")
        env_dir = os.path.join(sb.root, "from-env")
        r = sb.cli("release", "add", "shop", "1.0.0", path, env={"CUTOVER_STATE_DIR": env_dir}, state=False)
        ok(r, "add with CUTOVER_STATE_DIR")
        check(os.path.exists(os.path.join(env_dir, "state.db")), "state.db in $CUTOVER_STATE_DIR")
        eq(stat.S_IMODE(os.stat(env_dir).st_mode), 0o700, "state dir mode")
        # every action leaves an audit row with the actor
        ok(sb.cli("release", "add", "shop", "1.0.0", path), "add")
        ok(sb.cli("release", "add", "shop", "1.0.1", path), "add")
        # --state-dir wins over the environment (which has 1.0.0 only)
        r = sb.cli("releases", "shop", "--json", env={"CUTOVER_STATE_DIR": env_dir})
        eq([x["version"] for x in json.loads(r.stdout)["releases"]], ["1.0.0", "1.0.1"],
           "--state-dir overrides CUTOVER_STATE_DIR")
        sb.cli("release", "add", "shop", "1.0.0", sb.file("other.bin", "y"))
        ok(sb.cli("release", "prune", "shop", "--keep", "1"), "prune")
        with sb.db() as db:
            rows = db.execute("SELECT actor, actor_uid, action, target, args, result FROM audit ORDER BY id").fetchall()
        db.close()
        me = pwd.getpwuid(os.getuid()).pw_name
        eq([(r[0], r[1]) for r in rows], [(me, os.getuid())] * 4, "actor of each audit row")
        eq([(r[2], r[3], r[5]) for r in rows],
           [("release.add", "shop@1.0.0", "ok"), ("release.add", "shop@1.0.1", "ok"),
            ("release.add", "shop@1.0.0", "failed"), ("release.prune", "shop", "ok")], "audit rows")
        eq(json.loads(rows[0][4])["path"], path, "audit args (JSON)")
        eq(json.loads(rows[3][4])["deleted"], ["1.0.0"], "audit args of prune")
        # 1.0.0 and 1.0.1 share a digest: the directory stays for 1.0.1
        ok(sb.cli("release", "verify", "shop", "1.0.1"), "verify after pruning a version with the same digest")


def test_unwritable_state_dir():
    with Sandbox() as sb:
        path = sb.file("app.bin", "x")
        blocker = sb.file("not-a-dir", "x")
        r = sb.cli("release", "add", "shop", "1.0.0", path, "--state-dir", os.path.join(blocker, "state"),
                   state=False)
        eq(r.returncode, 1, f"exit status when the state dir cannot be created (stderr {r.stderr!r})")
        check(os.path.join(blocker, "state") in r.stderr and "cannot create" in r.stderr,
              f"message names the state dir: {r.stderr!r}")


def test_build_command_runs_once_and_its_output_is_the_release():
    """`build:` of a service runs at `release add` (with the configuration),
    on a copy of PATH: the release holds what it built, the sources are
    untouched, a failed build adds nothing and says why, nothing is left in
    the scratch directory."""
    with Sandbox() as sb:
        sb.file("app/main.sh", "#!/bin/sh\necho hi\n")
        cfg = os.path.join(sb.root, "cutover.yml")
        with open(cfg, "w") as f:
            f.write(f"state_dir: {sb.state}\nlisten: 127.0.0.1:{free_port()}\nservices:\n  shop:\n"
                    "    build: echo \"${SERVICE} ${VERSION}\" > BUILT && chmod +x main.sh && test -n \"$FAIL_BUILD\" && "
                    "exit 7 || true\n"
                    "    run: ${RELEASE_DIR}/main.sh ${PORT}\n    routes:\n      - path: /\n")
        src = os.path.join(sb.src, "app")
        r = sb.cli("release", "add", "shop", "1.0.0", src, "--config", cfg, "--json", state=False)
        eq(r.returncode, 0, f"release add with a build: {r.stdout}{r.stderr}")
        j = json.loads(r.stdout)
        check("BUILT" in j["build"]["command"] and os.path.exists(j["build"]["log"]), f"build in --json: {j}")
        eq(open(os.path.join(j["path"], "BUILT")).read(), "shop 1.0.0\n", "the release holds the build's output")
        check(os.stat(os.path.join(j["path"], "main.sh")).st_mode & 0o111, "built file executable")
        check(not os.path.exists(os.path.join(src, "BUILT")), "the sources were not built in place")
        eq(os.listdir(os.path.join(sb.state, "builds")), [], "scratch directory cleaned")
        # a failing build: nothing added, exit 1, the reason and the log named
        r = sb.cli("release", "add", "shop", "1.0.1", src, "--config", cfg, state=False, env={"FAIL_BUILD": "1"})
        check(r.returncode == 0, "the build's environment is cutover's, not the caller's: FAIL_BUILD unseen")
        with open(cfg) as f:
            text = f.read().replace('test -n "$FAIL_BUILD"', "true")
        with open(cfg, "w") as f:
            f.write(text)
        r = sb.cli("release", "add", "shop", "1.0.2", src, "--config", cfg, state=False)
        eq(r.returncode, 1, f"failed build: {r.stdout}{r.stderr}")
        check("the build of shop 1.0.2 failed (exit status 7" in r.stderr and "build-1.0.2.log" in r.stderr,
              f"message: {r.stderr!r}")
        versions = [x["version"] for x in json.loads(sb.cli("releases", "shop", "--json").stdout)["releases"]]
        eq(versions, ["1.0.0", "1.0.1"], "nothing added by the failed build")
        eq(os.listdir(os.path.join(sb.state, "builds")), [], "scratch directory cleaned after a failure")
