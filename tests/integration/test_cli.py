"""The command line as an operator uses it: --json on every verb (errors
included, with the same exit code as without), exit codes, read-only verbs
that never create state, one way to find the state and the daemon
(--state-dir / --socket, --config, ./cutover.yml), unknown services, the
history table, a permission error on the admin socket, the live progress
line of deploy on a terminal, and the recipe in examples/shop.yml followed
literally.  Real binary, real daemon where the verb talks to one."""
import contextlib
import os
import pty
import re
import select
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time

from harness import *
from shopenv import YAML, shop_binary


def run(*args, cwd=None, env=None, timeout=60):
    """The CLI with none of the CUTOVER_* variables of the caller."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("CUTOVER_") or k == "CUTOVER_BIN"}
    e.update(env or {})
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd or "/", env=e)


def json_error(r, code, what):
    """r failed with CODE and said so as one JSON object on stdout."""
    eq(r.returncode, code, f"{what}: exit status (stdout {r.stdout!r}, stderr {r.stderr!r})")
    lines = r.stdout.splitlines()
    eq(len(lines), 1, f"{what}: one JSON line on stdout: {r.stdout!r}")
    obj = json.loads(lines[0])
    eq((obj.get("ok"), obj.get("exit_code")), (False, code), f"{what}: ok / exit_code in {obj}")
    check(isinstance(obj.get("error"), str) and obj["error"], f"{what}: no error message in {obj}")
    logged = [json.loads(l).get("msg") for l in r.stderr.splitlines() if l.startswith("{")]
    check(obj["error"] in r.stderr or obj["error"] in logged, f"{what}: stderr should say the same: {r.stderr!r}")
    return obj


class Dir:
    """A temporary directory, removed at the end."""

    def __enter__(self):
        self.path = tempfile.mkdtemp(prefix="cutover-clitest-")
        return self.path

    def __exit__(self, *exc):
        for dirpath, dirnames, _ in os.walk(self.path):
            for d in dirnames:
                p = os.path.join(dirpath, d)
                if not os.path.islink(p):
                    os.chmod(p, 0o755)
        shutil.rmtree(self.path)


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def state_with_release(d, service="shop", version="1.0.0"):
    """A state dir holding one release of SERVICE (state.db created by
    `release add`, as in real use)."""
    src = write(os.path.join(d, "app"), "#!/bin/sh\n")
    os.chmod(src, 0o755)
    state = os.path.join(d, "state")
    r = run("release", "add", service, version, src, "--state-dir", state)
    eq(r.returncode, 0, f"release add: {r.stderr}")
    return state


@contextlib.contextmanager
def shop_daemon():
    """A daemon running the shop config; stopped with SIGTERM at the end, so
    that it stops its instances (the harness's SIGKILL would leave them
    running, as after a crash)."""
    for v in ("1.0.0", "1.1.0"):
        check(os.path.exists(shop_binary(v)), f"missing {shop_binary(v)}: build the shop first")
    with cutover(yaml_text=YAML) as c:
        try:
            yield c
        finally:
            c.terminate()


def add(c, *versions):
    for v in versions:
        r = run("release", "add", "shop", v, shop_binary(v), "--config", c.cfg_path)
        eq(r.returncode, 0, f"release add {v} --config: {r.stderr}")


def sock_of(c):
    return os.path.join(c.dir, "state", "admin.sock")


# ---------------------------------------------------------------- 1. --json everywhere


def test_every_verb_has_json_errors():
    """Each verb, failing, with --json: one JSON object on stdout with the
    exit code it has without --json."""
    with Dir() as d:
        bad = write(os.path.join(d, "bad.yml"), "listen: 127.0.0.1:1\nservcies: {}\n")
        missing = os.path.join(d, "no", "state")
        cases = [
            (["daemon", "--config", bad], 2),
            (["proxy", "--listen", "127.0.0.1:1"], 2),
            (["check", "--config", bad], 2),
            (["status", "--socket", os.path.join(d, "none.sock")], 3),
            (["status", "--config", bad], 2),
            (["deploy", "shop", "1.0.0", "--socket", os.path.join(d, "none.sock")], 3),
            (["deploy", "shop", "1.0.0", "--config", bad], 2),
            (["rollback", "shop", "--socket", os.path.join(d, "none.sock")], 3),
            (["history", "--state-dir", missing], 1),
            (["audit", "--state-dir", missing], 1),
            (["logs", "shop", "--state-dir", missing], 1),
            (["release", "add", "shop", "v1", bad, "--state-dir", missing], 2),
            (["release", "prune", "shop", "--keep", "x"], 2),
            (["release", "verify", "shop", "1.0.0", "--state-dir", missing], 1),
            (["releases", "shop", "--state-dir", missing], 1),
            (["demo", "--shop-dir", os.path.join(d, "nope")], 2),
            (["version", "extra"], 2),
        ]
        for args, code in cases:
            plain = run(*args)
            eq(plain.returncode, code, f"{' '.join(args)}: exit status ({plain.stderr!r})")
            eq(plain.stdout, "", f"{' '.join(args)}: stdout without --json")
            # --json first or last: the same
            json_error(run(*args, "--json"), code, " ".join(args) + " --json")
            json_error(run(args[0], "--json", *args[1:]), code, f"{args[0]} --json ...")
        check(not os.path.exists(missing), "a failing read-only verb created the state dir")


def test_check_json():
    example = os.path.join(ROOT, "examples", "cutover.yml")
    r = run("check", "--config", example, "--json")
    eq(r.returncode, 0, f"check --json: {r.stderr}")
    j = json.loads(r.stdout)
    eq((j["ok"], j["file"]), (True, example), "check --json")
    check(j["services"] >= 1 and j["listeners"] >= 1 and "routes" in j, f"counts: {j}")
    with Dir() as d:
        text = "listen: 127.0.0.1:8080\nservices:\n  a:\n    targets:\n      - address: 127.0.0.1:9000\n" \
               "        weight: 0\n"
        path = write(os.path.join(d, "w.yml"), text)
        j = json_error(run("check", "--config", path, "--json"), 2, "check --json on a bad file")
        eq((j["file"], j["line"], j["column"], j["field"]), (path, 6, 17, "services.a.targets[0].weight"),
           f"where: {j}")
        check("1..1000" in j["reason"] and not j["reason"].startswith(path), f"reason: {j['reason']!r}")
        check(j["error"].startswith(f"{path}:6:17: services.a.targets[0].weight: "), f"error: {j['error']!r}")


def test_version_json():
    r = run("version", "--json")
    eq(r.returncode, 0, "version --json")
    v = json.loads(r.stdout)["version"]
    eq(run("version").stdout, f"cutover {v}\n", "version and version --json agree")
    eq(run("--version").stdout, f"cutover {v}\n", "--version")


def test_logs_json_and_follow():
    with Dir() as d:
        state = state_with_release(d)
        logdir = os.path.join(state, "logs", "shop")
        os.makedirs(logdir)
        log = os.path.join(logdir, "1.0.0.log")
        write(log, 'first\n\nsays "hi" \\ \t\x01\nno newline')
        r = run("logs", "shop", "--state-dir", state, "--json")
        eq(r.returncode, 0, f"logs --json: {r.stderr}")
        got = [json.loads(l) for l in r.stdout.splitlines()]
        eq([g["line"] for g in got], ["first", "", 'says "hi" \\ \t\x01', "no newline"], "lines")
        eq({(g["service"], g["version"]) for g in got}, {("shop", "1.0.0")}, "service and version")
        r = run("logs", "shop", "1.0.0", "-n", "1", "--state-dir", state, "--json")
        eq([json.loads(l)["line"] for l in r.stdout.splitlines()], ["no newline"], "-n 1")
        with open(log, "ab") as f:
            f.write(b" ends\nbad utf-8 \xff\xfe here\n")
        r = run("logs", "shop", "--state-dir", state, "--json", "-n", "2")
        eq([json.loads(l)["line"] for l in r.stdout.splitlines()],
           ["no newline ends", "bad utf-8 \ufffd\ufffd here"], "invalid UTF-8 replaced")
        # -f --json: new lines arrive as JSON lines
        e = {k: v for k, v in os.environ.items() if not k.startswith("CUTOVER_")}
        p = subprocess.Popen([BIN, "logs", "shop", "-f", "--json", "-n", "1", "--state-dir", state],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e)
        try:
            first = json.loads(p.stdout.readline())
            eq(first["line"], "bad utf-8 \ufffd\ufffd here", "first line of -f")
            with open(log, "a") as f:
                f.write("streamed 1\nstreamed ")
                f.flush()
                time.sleep(0.5)
                f.write("2\n")
            eq(json.loads(p.stdout.readline()), {"service": "shop", "version": "1.0.0", "line": "streamed 1"},
               "followed line")
            eq(json.loads(p.stdout.readline())["line"], "streamed 2", "a line written in two pieces is one")
        finally:
            p.kill()
            p.wait()
            p.stdout.close()
            p.stderr.close()
        # plain output is unchanged: the bytes of the file
        r = run("logs", "shop", "--state-dir", state, "-n", "1")
        eq(r.stdout, "streamed 2\n", "plain logs")


def test_daemon_and_proxy_json_log():
    with echo_backend() as be, Dir() as d:
        port, admin, port2 = free_port(), free_port(), free_port()
        cfg = write(os.path.join(d, "cutover.yml"),
                    f"state_dir: {d}/state\n" + config_yaml({"a": {"targets": [f"127.0.0.1:{be.server_address[1]}"]}},
                                                           port, admin))
        for argv, p_port in ((["daemon", "--config", cfg, "--json"], port),
                             (["proxy", "--listen", f"127.0.0.1:{port2}", "--target",
                               f"127.0.0.1:{be.server_address[1]}", "--json"], port2)):
            p = subprocess.Popen([BIN, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                wait_port(p_port)
                eq(http_get(p_port, "/x")[0], 200, f"{argv[0]} --json proxies")
                os.kill(p.pid, signal.SIGTERM)
                out, err = p.communicate(timeout=15)
            finally:
                if p.poll() is None:
                    p.kill()
                    p.wait()
            eq(p.returncode, 0, f"{argv[0]} --json exit status")
            lines = err.splitlines()
            check(len(lines) >= 2, f"{argv[0]} --json: error log lines: {err!r}")
            for l in lines:
                obj = json.loads(l)
                # ts, level, msg, then a line's own fields (docs/logs.md)
                eq(list(obj)[:3], ["ts", "level", "msg"], f"first keys of {l!r}")
                check(set(obj) <= {"ts", "level", "msg", "cutover_version", "pid"}, f"keys of {l!r}")
                check(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", obj["ts"]), f"ts of {l!r}")
            check(any(json.loads(l)["msg"] == "received SIGTERM" for l in lines), f"SIGTERM logged: {err!r}")
        # without --json: logfmt as before
        p = subprocess.Popen([BIN, "daemon", "--config", cfg], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        try:
            wait_port(port)
            os.kill(p.pid, signal.SIGTERM)
            _, err = p.communicate(timeout=15)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        check(err.startswith("ts=") and 'msg="' in err, f"logfmt without --json: {err!r}")
        # a port taken: the failure is JSON too
        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        try:
            cfg2 = write(os.path.join(d, "busy.yml"),
                         f"listen: 127.0.0.1:{busy.getsockname()[1]}\nservices:\n  a:\n    targets: [127.0.0.1:9]\n")
            r = run("daemon", "--config", cfg2, "--json", timeout=10)
            json_error(r, 1, "daemon --json on a taken port")
            for l in r.stderr.splitlines():
                obj = json.loads(l)
                check(list(obj)[:3] == ["ts", "level", "msg"] and
                      set(obj) <= {"ts", "level", "msg", "cutover_version", "pid"},
                      f"stderr is JSON lines: {r.stderr!r}")
            check(any(f"127.0.0.1:{busy.getsockname()[1]}" in json.loads(l)["msg"] for l in r.stderr.splitlines()),
                  f"the taken address is logged: {r.stderr!r}")
        finally:
            busy.close()


def test_release_prune_json():
    with Dir() as d:
        state = state_with_release(d)
        src = os.path.join(d, "app")
        for v in ("1.1.0", "1.2.0"):
            write(src, f"#!/bin/sh\necho {v}\n")
            eq(run("release", "add", "shop", v, src, "--state-dir", state).returncode, 0, f"add {v}")
        r = run("release", "prune", "shop", "--keep", "1", "--state-dir", state, "--json")
        eq(r.returncode, 0, f"prune --json: {r.stderr}")
        j = json.loads(r.stdout)
        eq([x["version"] for x in j["deleted"]], ["1.0.0", "1.1.0"], "deleted")
        eq(j["kept"], ["1.2.0"], "kept")
        json_error(run("release", "prune", "shop", "--state-dir", state, "--json"), 2, "prune without --keep")
        json_error(run("release", "prune", "shop", "--keep", "0", "--json", "--state-dir", state), 2,
                   "prune --keep 0")


# ---------------------------------------------------------------- 2. exit codes


def test_deploy_exit_codes_and_json_errors():
    with shop_daemon() as c:
        sock = sock_of(c)
        add(c, "1.0.0", "1.1.0")
        for args in (["deploy", "nope", "1.0.0"], ["rollback", "nope"]):
            r = run(*args, "--socket", sock)
            eq(r.returncode, 2, f"{' '.join(args)}: unknown service exit status ({r.stderr!r})")
            check("unknown service 'nope'" in r.stderr, f"message: {r.stderr!r}")
            j = json_error(run(*args, "--socket", sock, "--json"), 2, " ".join(args) + " --json")
            eq(j["status"], 404, "HTTP status in the JSON error")
        r = run("deploy", "shop", "1..0", "--socket", sock)
        eq(r.returncode, 2, f"invalid version exit status ({r.stderr!r})")
        json_error(run("deploy", "shop", "1..0", "--socket", sock, "--json"), 2, "invalid version --json")
        for t in ("abc", "0", "-5", "10x", ""):
            r = run("deploy", "shop", "1.0.0", "--timeout", t, "--socket", sock)
            eq(r.returncode, 2, f"--timeout {t!r}: exit status")
            check("--timeout" in r.stderr, f"--timeout {t!r} message: {r.stderr!r}")
        check("--timeout DURATION" in run("deploy", "--help").stdout, "--timeout documented in deploy --help")
        check("--timeout DURATION" in run("rollback", "--help").stdout, "--timeout documented in rollback --help")
        r = run("deploy", "shop", "1.0.0", "--timeout", "30s", "--socket", sock)
        eq(r.returncode, 0, f"deploy with --timeout 30s: {r.stdout}{r.stderr}")
        # --timeout 1 (bare seconds): the deploy is in its 3 s watch when the CLI stops following
        r = run("deploy", "shop", "1.1.0", "--timeout", "1", "--socket", sock, "--json")
        j = json_error(r, 1, "deploy --timeout 1 --json")
        check("still switched after 1" in j["error"], f"timeout message: {j['error']!r}")
        # meanwhile that deploy is in progress: a second one is refused (409: exit 1)
        r = run("deploy", "shop", "1.0.0", "--socket", sock, "--json")
        j = json_error(r, 1, "deploy while another is in progress")
        check("in progress" in j["error"] and j["status"] == 409, f"in-progress error: {j}")
        poll_until(lambda: json.loads(run("status", "--socket", sock, "--json").stdout)["managed"][0]["deploying"]
                   is None, timeout=15, what="the 1.1.0 deploy to finish")
        # unknown service in the history: exit 1, JSON too
        j = json_error(run("history", "nope", "--state-dir", f"{c.dir}/state", "--json"), 1, "history nope")
        eq(j["service"], "nope", "service in the error")


def test_extra_arguments_rejected():
    cases = [["daemon", "x"], ["proxy", "x"], ["check", "x"], ["status", "x"], ["deploy", "a", "1.0.0", "x"],
             ["rollback", "a", "x"], ["history", "a", "x"], ["audit", "a", "x"], ["logs", "a", "1.0.0", "x"],
             ["release", "add", "a", "1.0.0", "/", "x"], ["release", "prune", "a", "x", "--keep", "1"],
             ["release", "verify", "a", "1.0.0", "x"], ["releases", "a", "x"], ["demo", "x"], ["version", "x"]]
    bad = []
    for args in cases:
        r = run(*args, "--state-dir", "/nonexistent/x") if args[0] in ("history", "audit", "logs", "releases") \
            else run(*args)
        if r.returncode != 2 or not re.search(r"unexpected argument 'x'|got \d+ arguments", r.stderr) or r.stdout:
            bad.append(f"{' '.join(args)}: exit {r.returncode}, stdout {r.stdout!r}, stderr {r.stderr!r}")
    check(not bad, "extra arguments:\n  " + "\n  ".join(bad))
    check(not os.path.exists("/nonexistent"), "a rejected command created its state dir")


def test_demo_missing_shop_dir():
    before = sorted(p for p in os.listdir("/tmp") if p.startswith("cutover-demo-"))
    with Dir() as d:
        r = run("demo", "--shop-dir", os.path.join(d, "missing"))
        eq(r.returncode, 2, "demo --shop-dir missing: exit status")
        check(os.path.join(d, "missing") in r.stderr and "No such file" in r.stderr and "shop-1.0.0" in r.stderr,
              f"message: {r.stderr!r}")
        r = run("demo", "--shop-dir", d)
        eq(r.returncode, 2, "demo --shop-dir without the binaries: exit status")
        check("shop-1.0.0" in r.stderr, f"message: {r.stderr!r}")
        eq(sorted(p for p in os.listdir("/tmp") if p.startswith("cutover-demo-")), before, "work dirs created")


# ---------------------------------------------------------------- 3. read-only verbs create nothing


def test_read_only_verbs_create_nothing():
    with Dir() as d:
        empty = os.path.join(d, "empty")
        os.mkdir(empty)
        for state in (os.path.join(d, "nonexistent", "x"), empty):
            for args in (["history"], ["history", "shop"], ["audit"], ["releases", "shop"], ["logs", "shop"],
                         ["release", "prune", "shop", "--keep", "1"], ["release", "verify", "shop", "1.0.0"]):
                r = run(*args, "--state-dir", state)
                eq(r.returncode, 1, f"{' '.join(args)} on {state}: exit status ({r.stderr!r})")
                check(f"no cutover state in {state} (state.db not found): is --state-dir / state_dir right?"
                      in r.stderr, f"{' '.join(args)}: message {r.stderr!r}")
                # also through the environment and a configuration file
                r = run(*args, env={"CUTOVER_STATE_DIR": state})
                eq(r.returncode, 1, f"{' '.join(args)} with CUTOVER_STATE_DIR={state}")
        check(not os.path.exists(os.path.join(d, "nonexistent")), "a read-only verb created the state dir")
        eq(os.listdir(empty), [], "a read-only verb wrote into an existing directory")
        check("exit 1 if DIR holds no state.db" in run("history", "--help").stdout, "documented in --help")


# ---------------------------------------------------------------- 4. --config and ./cutover.yml


def test_config_and_local_cutover_yml():
    with shop_daemon() as c:
        add(c, "1.0.0")  # release add --config: into the daemon's state dir
        r = run("deploy", "shop", "1.0.0", "--config", c.cfg_path)
        eq(r.returncode, 0, f"deploy --config: {r.stdout}{r.stderr}")
        state = os.path.join(c.dir, "state")
        for args in (["history", "shop"], ["audit", "shop"], ["releases", "shop"], ["logs", "shop"],
                     ["release", "verify", "shop", "1.0.0"], ["status"]):
            via_config = run(*args, "--config", c.cfg_path)
            eq(via_config.returncode, 0, f"{' '.join(args)} --config: {via_config.stderr}")
            # ./cutover.yml when nothing else is given (c.dir holds the daemon's cutover.yml)
            local = run(*args, cwd=c.dir)
            eq(local.returncode, 0, f"{' '.join(args)} from the directory of cutover.yml: {local.stderr}")
            if args[0] not in ("status", "logs", "release"):
                eq(local.stdout, via_config.stdout, f"{' '.join(args)}: same answer both ways")
            if args[0] != "status":
                explicit = run(*args, "--state-dir", state)
                eq(explicit.returncode, 0, f"{' '.join(args)} --state-dir")
        # the order: --state-dir beats --config, --config beats $CUTOVER_STATE_DIR, which beats ./cutover.yml
        r = run("history", "--config", c.cfg_path, "--state-dir", "/nonexistent/y")
        check(r.returncode == 1 and "/nonexistent/y" in r.stderr, f"--state-dir first: {r.stderr!r}")
        r = run("history", "--config", c.cfg_path, env={"CUTOVER_STATE_DIR": "/nonexistent/y"})
        eq(r.returncode, 0, f"--config over $CUTOVER_STATE_DIR: {r.stderr!r}")
        r = run("history", cwd=c.dir, env={"CUTOVER_STATE_DIR": "/nonexistent/y"})
        check(r.returncode == 1 and "/nonexistent/y" in r.stderr, f"$CUTOVER_STATE_DIR over ./cutover.yml")
        r = run("status", "--config", c.cfg_path, "--socket", "/nonexistent/s.sock")
        eq(r.returncode, 3, "--socket first")
        r = run("status", "--config", c.cfg_path, env={"CUTOVER_SOCKET": "/nonexistent/s.sock"})
        eq(r.returncode, 0, f"--config over $CUTOVER_SOCKET: {r.stderr!r}")
        # the rollback too, from the directory of cutover.yml
        eq(run("rollback", "shop", cwd=c.dir).returncode, 1, "rollback with nothing to go back to: refused")
        for verb in ("status", "deploy", "rollback", "history", "audit", "logs", "releases", "release"):
            h = run(verb, "--help").stdout
            check("--config FILE" in h and "./cutover.yml" in h, f"{verb} --help explains --config and ./cutover.yml")
    # an invalid ./cutover.yml is a configuration error (exit 2), named
    with Dir() as d:
        write(os.path.join(d, "cutover.yml"), "listen: nonsense\n")
        for args in (["history"], ["status"], ["releases", "shop"]):
            r = run(*args, cwd=d)
            eq(r.returncode, 2, f"{args[0]} with an invalid ./cutover.yml")
            check("cutover.yml:1:9: listen" in r.stderr, f"{args[0]}: message {r.stderr!r}")


# ---------------------------------------------------------------- 5. history table and unknown services


def test_history_table_and_unknown_service():
    with shop_daemon() as c:
        sock, state = sock_of(c), os.path.join(c.dir, "state")
        add(c, "1.0.0")
        eq(run("history", "shop", "--state-dir", state).stdout, "no deployments recorded\n",
           "a known service without deployments")
        eq(run("deploy", "shop", "1.0.0", "--socket", sock).returncode, 0, "deploy 1.0.0")
        eq(run("deploy", "shop", "9.9.9", "--socket", sock).returncode, 1, "deploy without a release: failed")
        r = run("history", "--state-dir", state)
        eq(r.returncode, 0, f"history: {r.stderr}")
        head, *rows = r.stdout.splitlines()
        eq(len(rows), 2, f"rows: {r.stdout}")
        at, why = head.index("STARTED"), head.index("REASON")
        for row in rows:
            m = re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", row)
            check(m and m.start() == at, f"STARTED column: header at {at}, row {row!r}")
            check(row[m.end():why].strip() == "", f"timestamp overflows into REASON: {row!r}")
        check(rows[0][why:].startswith("no release shop 9.9.9"), f"REASON column: {head!r} / {rows[0]!r}")
        for args in (["history", "nope"], ["releases", "nope"], ["audit", "nope"]):
            r = run(*args, "--state-dir", state)
            eq(r.returncode, 1, f"{' '.join(args)}: exit status")
            eq(r.stderr, f"cutover {args[0]}: unknown service 'nope' (no deployments / releases recorded)\n",
               f"{' '.join(args)}: message")
            eq(r.stdout, "", f"{' '.join(args)}: stdout")
        for args in (["history", "shop"], ["releases", "shop"], ["audit", "shop"]):
            eq(run(*args, "--state-dir", state).returncode, 0, f"{' '.join(args)}: a known service")


# ---------------------------------------------------------------- 6. permission denied on the socket


def test_socket_permission_denied():
    with echo_backend() as be, Dir() as d:
        sockdir = os.path.join(d, "run")
        os.mkdir(sockdir, 0o700)
        sock = os.path.join(sockdir, "admin.sock")
        port = free_port()
        p = subprocess.Popen([BIN, "proxy", "--listen", f"127.0.0.1:{port}", "--target",
                              f"127.0.0.1:{be.server_address[1]}", "--admin-socket", sock],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_port(port)
            poll_until(lambda: os.path.exists(sock), what="the admin socket")
            eq(stat.S_IMODE(os.stat(sock).st_mode), 0o600, "socket mode")
            if os.getuid() == 0:
                os.chmod(d, 0o755)  # nobody may reach run/, not the socket inside
                def as_nobody():
                    os.setgid(65534)
                    os.setgroups([])
                    os.setuid(65534)
                # a copy nobody can execute: the build tree may sit under a 0700 directory
                binary = os.path.join(d, "cutover-for-nobody")
                shutil.copy(BIN, binary)
                os.chmod(binary, 0o755)
                r = subprocess.run([binary, "status", "--socket", sock], capture_output=True, text=True,
                                   timeout=10, cwd="/", preexec_fn=as_nobody)
                owner = "root"
            else:
                os.chmod(sock, 0)  # not even its owner may connect now
                r = run("status", "--socket", sock)
                owner = __import__("pwd").getpwuid(os.getuid()).pw_name
            eq(r.returncode, 3, f"exit status on EACCES ({r.stderr!r})")
            check("only for the user the daemon runs as (mode 0600)" in r.stderr and "run this as that user" in r.stderr,
                  f"EACCES message: {r.stderr!r}")
            check(owner in r.stderr, f"the message names the daemon's user {owner}: {r.stderr!r}")
            check("is `cutover daemon` running" not in r.stderr, f"EACCES is not 'not running': {r.stderr!r}")
        finally:
            p.terminate()
            p.wait(10)


# ---------------------------------------------------------------- 7. progress on a terminal


def on_terminal(args, env=None, timeout=60):
    """Run the CLI with stdout and stderr on a pseudo-terminal; returns
    (exit status, everything it wrote)."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("CUTOVER_") and k != "NO_COLOR"}
    e.update(env or {})
    master, slave = pty.openpty()
    p = subprocess.Popen([BIN, *args], stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=e, cwd="/")
    os.close(slave)
    out, end = b"", time.time() + timeout
    try:
        while time.time() < end:
            r, _, _ = select.select([master], [], [], 0.5)
            if r:
                try:
                    data = os.read(master, 65536)
                except OSError:
                    data = b""
                if not data:
                    break
                out += data
            elif p.poll() is not None:
                break
        return p.wait(10), out.decode(errors="replace")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        os.close(master)


def test_deploy_progress_on_a_terminal():
    with shop_daemon() as c:
        sock = sock_of(c)
        add(c, "1.0.0", "1.1.0")
        rc, out = on_terminal(["deploy", "shop", "1.0.0", "--socket", sock])
        eq(rc, 0, f"deploy on a terminal: {out!r}")
        # a live line rewritten in place: the time runs during the 3 s watch
        lives = re.findall(r"\r\x1b\[K +(\d+\.\d\d)s  switched +[^\r\n]*\.\.\.(?=\r)", out)
        check(len(lives) >= 10, f"live lines of the watch: {len(lives)} in {out!r}")
        check(float(lives[-1]) - float(lives[0]) >= 1.5, f"the live time runs: {lives[0]} .. {lives[-1]}")
        eq(sorted(map(float, lives)), list(map(float, lives)), "live time never goes back")
        check("\x1b[32mdone\x1b[0m" in out, f"green result line: {out[-200:]!r}")
        # once finished, the screen holds the plain lines: each phase once
        final = re.sub(r"[^\n]*\r\x1b\[K", "", out.replace("\r\n", "\n"))
        eq([l.split()[1] for l in final.splitlines()[1:-1]],
           ["starting", "health-checking", "healthy", "switched", "analysis", "done"], f"phases left on screen: {final!r}")
        # a failure in red; NO_COLOR: no colour, still the live line
        rc, out = on_terminal(["deploy", "shop", "9.9.9", "--socket", sock])
        eq(rc, 1, "failed deploy on a terminal")
        check(re.search(r"\x1b\[31mfailed: no release shop 9\.9\.9[^\x1b]*\x1b\[0m", out), f"red failure: {out!r}")
        rc, out = on_terminal(["deploy", "shop", "1.1.0", "--socket", sock], env={"NO_COLOR": "1"})
        eq(rc, 0, "deploy with NO_COLOR")
        check("\x1b[3" not in out and out.rstrip().endswith("done"), f"NO_COLOR: {out[-200:]!r}")
        check("\r\x1b[K" in out, "NO_COLOR keeps the live line")
        # piped: plain lines exactly as before, no escape, no carriage return
        r = run("rollback", "shop", "--socket", sock)
        eq(r.returncode, 0, f"rollback: {r.stdout}{r.stderr}")
        check("\r" not in r.stdout and "\x1b" not in r.stdout, f"piped output is plain: {r.stdout!r}")
        lines = r.stdout.splitlines()
        check(re.match(r"deployment \d+: shop 1\.0\.0$", lines[0]), f"first line: {lines[0]!r}")
        check(all(re.match(r"  +\d+\.\d\ds  \S", l) for l in lines[1:-1]), f"phase lines: {lines!r}")
        check(lines[-1].startswith("done: manual rollback to warm 1.0.0"), f"result line: {lines[-1]!r}")


# ---------------------------------------------------------------- 8. examples/shop.yml, followed literally


def test_shop_yml_recipe():
    """The commands of the header comment of examples/shop.yml, run with
    bash from a copy of the repository's layout (free ports instead of
    8080/9180, a 1 s watch instead of 20 s)."""
    with open(os.path.join(ROOT, "examples", "shop.yml")) as f:
        text = f.read()
    cmds = [l[4:].split("   #")[0].rstrip() for l in text.splitlines() if l.startswith("#   ")]
    check(any(c.startswith("build/cutover release add shop 1.0.0") for c in cmds), f"the recipe: {cmds}")
    check(all(not c.startswith("cutover ") for c in cmds), f"commands run from the repo root: {cmds}")
    with Dir() as root:
        port, admin = free_port(), free_port()
        os.makedirs(os.path.join(root, "examples"))
        os.makedirs(os.path.join(root, "build", "examples", "shop"))
        os.symlink(BIN, os.path.join(root, "build", "cutover"))
        for v in ("1.0.0", "1.1.0", "1.2.0"):
            os.symlink(shop_binary(v), os.path.join(root, "build", "examples", "shop", f"shop-{v}"))
        write(os.path.join(root, "examples", "shop.yml"),
              text.replace("127.0.0.1:8080", f"127.0.0.1:{port}").replace("127.0.0.1:9180", f"127.0.0.1:{admin}")
              .replace("watch: 20s", "watch: 1s"))
        script = ["trap '[ -f daemon.pid ] && kill $(cat daemon.pid) 2>/dev/null' EXIT"]
        for cmd in cmds:
            cmd = cmd.replace("127.0.0.1:8080", f"127.0.0.1:{port}")
            script.append(cmd + " || exit 99" if not cmd.endswith("&") and not cmd.startswith("kill") else cmd)
            if cmd.endswith("&"):
                script.append("echo $! > daemon.pid")
                script.append("for i in $(seq 100); do [ -S examples/.cutover-demo/admin.sock ] && break; "
                              "sleep 0.1; done")
        try:
            r = subprocess.run(["bash", "-c", "\n".join(script)], cwd=root, capture_output=True, text=True,
                               timeout=120, env={k: v for k, v in os.environ.items() if not k.startswith("CUTOVER_")})
            eq(r.returncode, 0, f"the recipe failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
            check('"status":"ok"' in r.stdout and '"version":"1.0.0"' in r.stdout, f"curl /health: {r.stdout!r}")
            check(re.search(r"live +1\.1\.0", r.stdout), f"status after the second deploy: {r.stdout!r}")
            eq(pids_under(root), [], "processes left after the recipe's cutover shutdown --stop-services")
        finally:
            for pid in pids_under(root):  # a failed recipe: its shop instances outlive the daemon
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            pidfile = os.path.join(root, "daemon.pid")
            if os.path.exists(pidfile):
                pid = int(open(pidfile).read())
                try:
                    os.kill(pid, signal.SIGTERM)  # the daemon stops the shop with it
                    poll_until(lambda: not os.path.exists(f"/proc/{pid}"), timeout=15, what="the daemon to stop")
                except ProcessLookupError:
                    pass
