"""The command line: `cutover check`, `cutover daemon` with a bad file,
`cutover proxy` flags, usage and version."""
import re
import shutil
from harness import *

EXAMPLE = os.path.join(ROOT, "examples", "cutover.yml")
GOOD_TAIL = "services:\n  a:\n    targets: [127.0.0.1:9000]\n"


def pos(text, needle, nth=1, skip=0):
    """1-based (line, column) of the nth occurrence of needle in text, plus
    `skip` characters."""
    i = -1
    for _ in range(nth):
        i = text.index(needle, i + 1)
    i += skip
    line = text.count("\n", 0, i) + 1
    col = i - (text.rfind("\n", 0, i) + 1) + 1
    return line, col


# (name, file text, (needle, nth[, skip]) the error points at, field, words in the reason)
BROKEN = [
    ("unknown key",
     "listen: 127.0.0.1:8080\nservcies:\n  a:\n    targets: [127.0.0.1:9000]\n",
     ("servcies", 1), "servcies", ["unknown key", 'did you mean "services"']),
    ("unknown nested key",
     "listen: 127.0.0.1:8080\nservices:\n  a:\n    tragets: [127.0.0.1:9000]\n",
     ("tragets", 1), "services.a.tragets", ["unknown key"]),
    ("bad duration",
     "listen: 127.0.0.1:8080\ntimeouts:\n  client_header: 10x\n" + GOOD_TAIL,
     ("10x", 1), "timeouts.client_header", ["duration", "10x"]),
    ("wrong type (list for an integer)",
     "listen: 127.0.0.1:8080\nlimits:\n  max_connections: [1]\n" + GOOD_TAIL,
     ("[1]", 1), "limits.max_connections", ["integer"]),
    ("wrong type (word for an integer)",
     "listen: 127.0.0.1:8080\nlimits:\n  max_connections: lots\n" + GOOD_TAIL,
     ("lots", 1), "limits.max_connections", ["integer", "lots"]),
    ("duplicate key",
     "listen: 127.0.0.1:8080\nlisten: 127.0.0.1:8081\n" + GOOD_TAIL,
     ("listen", 2), "listen", ["duplicate key", "line 1"]),
    ("duplicate nested key",
     "listen: 127.0.0.1:8080\nservices:\n  a:\n    targets:\n      - 127.0.0.1:9000\n"
     "    targets:\n      - 127.0.0.1:9001\n",
     ("targets", 2), "services.a.targets", ["duplicate key", "line 4"]),
    ("admin not on loopback",
     "listen: 127.0.0.1:8080\nadmin: 10.0.0.1:9180\n" + GOOD_TAIL,
     ("10.0.0.1", 1), "admin", ["loopback"]),
    ("port out of range",
     "listen: 127.0.0.1:70000\n" + GOOD_TAIL,
     ("127.0.0.1:70000", 1), "listen", ["70000"]),
    ("bad weight",
     "listen: 127.0.0.1:8080\nservices:\n  a:\n    targets:\n      - address: 127.0.0.1:9000\n        weight: 0\n",
     ("weight: 0", 1, 8), "services.a.targets[0].weight", ["1..1000"]),
    ("services as a list",
     "listen: 127.0.0.1:8080\nservices:\n  - a\n",
     ("- a", 1), "services", ["mapping"]),
]


def write(d, name, text):
    p = os.path.join(d, name)
    with open(p, "w") as f:
        f.write(text)
    return p


def test_check_example_ok():
    r = run_cli("check", "--config", EXAMPLE)
    eq(r.returncode, 0, f"exit status of check on examples/cutover.yml (stderr {r.stderr!r})")
    check("ok" in r.stdout, f"check should say ok: {r.stdout!r}")
    eq(r.stderr, "", "stderr of a successful check")


def test_check_broken_files():
    d = tempfile.mkdtemp(prefix="cutover-cli-")
    try:
        bad = []
        for i, (name, text, where, field, words) in enumerate(BROKEN):
            path = write(d, f"broken{i}.yml", text)
            line, col = pos(text, *where)
            r = run_cli("check", "--config", path)
            want = f"{path}:{line}:{col}: {field}: "
            problems = []
            if r.returncode != 2:
                problems.append(f"exit status {r.returncode}, expected 2")
            if want not in r.stderr:
                problems.append(f"stderr lacks {want!r}")
            problems += [f"reason lacks {w!r}" for w in words if w not in r.stderr]
            if r.stdout:
                problems.append(f"stdout not empty: {r.stdout!r}")
            if problems:
                bad.append(f"{name}: {'; '.join(problems)} (stderr: {r.stderr.strip()!r})")
        check(not bad, "broken files:\n  " + "\n  ".join(bad))
    finally:
        shutil.rmtree(d)


# Malformed YAML: (name, file text, (needle, nth[, skip]) of the line the slip
# is on, words in the message).  libyaml notices an unclosed quote or bracket,
# or a key without its ':', only lines later (at the next key, or the end of
# the file): the error must still point at the line to fix.
HEAD = "listen: 127.0.0.1:{PORT}\nadmin: 127.0.0.1:{ADMIN}\n"
SYNTAX = [
    ("unclosed quote at the end of the file",
     HEAD + GOOD_TAIL + "    routes:\n      - path: \"/api\n",
     ('"/api', 1), ["the quoted string that starts here is not closed", "end of stream at line 8"]),
    ("unclosed quote with keys after it",
     HEAD + "services:\n  a:\n    run: \"./app --port ${PORT}\n    routes: []\n  b:\n    targets: [127.0.0.1:1]\n",
     ('"./app', 1), ["the quoted string that starts here is not closed"]),
    ("unclosed list",
     HEAD + "services:\n  a:\n    targets: [127.0.0.1:9000\n    routes: []\n",
     ("[127", 1), ["the list '[' that starts here is not closed"]),
    ("unclosed list at the end of the file",
     HEAD + "services: [\n",
     ("[", 1), ["the list '[' that starts here is not closed"]),
    ("key without ':'",
     HEAD + "services:\n  a\n    targets: [127.0.0.1:9000]\n",
     ("  a\n", 1, 2), ["this key has no ':' after it"]),
    ("bad indentation",
     HEAD + "services:\n  a:\n    targets: [127.0.0.1:9000]\n   routes: []\n",
     ("routes", 1), ["did not find expected key"]),
    ("a tab in the indentation",
     HEAD + "services:\n  a:\n\ttargets: [127.0.0.1:9000]\n",
     ("\t", 1), ["indent with spaces"]),
    ("a stray colon",
     HEAD + "services:\n  a:\n    targets: [127.0.0.1:9000]\n    routes: path: /\n",
     (": /", 1), ["mapping values are not allowed"]),
]


def test_syntax_errors_point_at_the_line_to_fix():
    """`cutover check` and `cutover daemon` name FILE:LINE:COL of the slip
    itself; where libyaml noticed it is in the parenthesis."""
    d = tempfile.mkdtemp(prefix="cutover-cli-")
    try:
        bad = []
        for i, (name, text, where, words) in enumerate(SYNTAX):
            port, admin = free_port(), free_port()
            text = text.replace("{PORT}", str(port)).replace("{ADMIN}", str(admin))
            path = write(d, f"syntax{i}.yml", text)
            line, col = pos(text, *where)
            want = f"{path}:{line}:{col}: syntax error: "
            for verb in ("check", "daemon"):
                r = run_cli(verb, "--config", path, timeout=10)
                problems = []
                if r.returncode != 2:
                    problems.append(f"exit status {r.returncode}, expected 2")
                if want not in r.stderr:
                    problems.append(f"stderr lacks {want!r}")
                problems += [f"message lacks {w!r}" for w in words if w not in r.stderr]
                if problems:
                    bad.append(f"{name} ({verb}): {'; '.join(problems)} (stderr: {r.stderr.strip()!r})")
            check(connect_refused(port) and connect_refused(admin), f"{name}: a port is listening")
        check(not bad, "syntax errors:\n  " + "\n  ".join(bad))
    finally:
        shutil.rmtree(d)


def test_check_syntax_error_empty_and_missing():
    d = tempfile.mkdtemp(prefix="cutover-cli-")
    try:
        text = "listen: 127.0.0.1:8080\nservices:\n  a:\n    targets: [127.0.0.1:9000\n"
        path = write(d, "syntax.yml", text)
        r = run_cli("check", "--config", path)
        eq(r.returncode, 2, "exit status on a YAML syntax error")
        check(re.search(re.escape(path) + r":\d+:\d+: syntax error", r.stderr),
              f"syntax error without FILE:LINE:COL: {r.stderr!r}")

        path = write(d, "empty.yml", "# nothing here\n")
        r = run_cli("check", "--config", path)
        eq(r.returncode, 2, "exit status on an empty file")
        check(path in r.stderr and "empty" in r.stderr, f"empty file message: {r.stderr!r}")

        path = os.path.join(d, "missing.yml")
        r = run_cli("check", "--config", path)
        eq(r.returncode, 2, "exit status on a missing file")
        check(f"{path}: cannot read" in r.stderr and "No such file" in r.stderr,
              f"missing file message: {r.stderr!r}")

        # default file name is ./cutover.yml
        r = run_cli("check", cwd=d)
        eq(r.returncode, 2, "exit status of check without --config in a directory without cutover.yml")
        check("cutover.yml" in r.stderr, f"message should name cutover.yml: {r.stderr!r}")
    finally:
        shutil.rmtree(d)


def test_daemon_bad_config_binds_nothing():
    d = tempfile.mkdtemp(prefix="cutover-cli-")
    try:
        port, admin = free_port(), free_port()
        text = f"listen: 127.0.0.1:{port}\nadmin: 127.0.0.1:{admin}\n" + GOOD_TAIL + "    weight_typo: 3\n"
        path = write(d, "cutover.yml", text)
        t0 = time.time()
        r = run_cli("daemon", "--config", path, timeout=10)
        took = time.time() - t0
        eq(r.returncode, 2, f"daemon exit status on a bad config (stderr {r.stderr!r})")
        line, col = pos(text, "weight_typo")
        check(f"{path}:{line}:{col}: services.a.weight_typo: " in r.stderr,
              f"daemon error lacks FILE:LINE:COL: field: {r.stderr!r}")
        check(took < 5, f"daemon took {took:.1f}s to reject its config")
        check(connect_refused(port) and connect_refused(admin), "a port of the rejected config is listening")
        check("listening" not in r.stderr, f"daemon logged that it listens: {r.stderr!r}")
    finally:
        shutil.rmtree(d)


def test_daemon_port_in_use_fails():
    d = tempfile.mkdtemp(prefix="cutover-cli-")
    busy = socket.socket()
    try:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        path = write(d, "cutover.yml", f"listen: 127.0.0.1:{port}\n" + GOOD_TAIL)
        r = run_cli("daemon", "--config", path, timeout=10)
        eq(r.returncode, 1, f"daemon exit status when the listen port is taken (stderr {r.stderr!r})")
        check(f"127.0.0.1:{port}" in r.stderr, f"error should name the address: {r.stderr!r}")
    finally:
        busy.close()
        shutil.rmtree(d)


def test_proxy_flags_required():
    for args in (["proxy", "--listen", "127.0.0.1:1"], ["proxy", "--target", "127.0.0.1:1"], ["proxy"]):
        r = run_cli(*args, timeout=5)
        eq(r.returncode, 2, f"exit status of {' '.join(args)}")
        check("--target" in r.stderr and "--listen" in r.stderr,
              f"{' '.join(args)}: message should name --listen and --target: {r.stderr!r}")
    r = run_cli("proxy", "--listen", "127.0.0.1:1", "--target", "nonsense", timeout=5)
    eq(r.returncode, 2, "exit status with an invalid --target")
    check("nonsense" in r.stderr, f"message should quote the bad address: {r.stderr!r}")


def test_proxy_verb_runs():
    with echo_backend() as be:
        port, admin = free_port(), free_port()
        d = tempfile.mkdtemp(prefix="cutover-cli-")
        log = os.path.join(d, "access.log")
        err = open(os.path.join(d, "stderr.log"), "w")
        p = subprocess.Popen([BIN, "proxy", "--listen", f"127.0.0.1:{port}", "--target",
                              f"127.0.0.1:{be.server_address[1]}", "--admin", f"127.0.0.1:{admin}",
                              "--access-log", log], stdout=err, stderr=err)
        try:
            wait_port(port)
            status, _, body = http_get(port, "/via-proxy-verb")
            eq(status, 200, "status through `cutover proxy`")
            eq(json.loads(body)["target"], "/via-proxy-verb", "path at the backend")
            status, _, m = http_get(admin, "/metrics")
            eq(status, 200, "/metrics of `cutover proxy --admin`")
            check(re.search(r'cutover_requests_total\{service="default",target="127\.0\.0\.1:%d",method="GET",'
                            r'status="2xx"\} 1\n' % be.server_address[1], m.decode()),
                  f"requests_total for the default service: {m.decode()[:600]!r}")
            os.kill(p.pid, signal.SIGTERM)
            eq(p.wait(10), 0, "exit status after SIGTERM")
            with open(log) as f:
                lines = f.read().splitlines()
            eq(len(lines), 1, "access log lines")
            check("path=\"/via-proxy-verb\"" in lines[0] or "path=/via-proxy-verb" in lines[0],
                  f"access log line: {lines[0]!r}")
        finally:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
                p.wait()
            err.close()
            shutil.rmtree(d)


def test_usage_and_unknown_verb():
    r = run_cli(timeout=5)
    eq(r.returncode, 2, "exit status with no verb")
    for verb in ("usage:", "daemon", "proxy", "check", "version"):
        check(verb in r.stderr, f"usage without a verb lacks {verb!r}: {r.stderr!r}")
    r = run_cli("frobnicate", timeout=5)
    eq(r.returncode, 2, "exit status with an unknown verb")
    check("frobnicate" in r.stderr and "usage:" in r.stderr, f"unknown verb message: {r.stderr!r}")
    r = run_cli("daemon", "--no-such-flag", timeout=5)
    eq(r.returncode, 2, "exit status with an unknown daemon flag")


def test_version():
    with open(os.path.join(ROOT, "meson.build")) as f:
        want = re.search(r"version\s*:\s*'([^']+)'", f.read()).group(1)
    for arg in ("version", "--version"):
        r = run_cli(arg, timeout=5)
        eq(r.returncode, 0, f"exit status of `cutover {arg}`")
        eq(r.stdout.strip(), f"cutover {want}", f"`cutover {arg}` output")
