"""The operations guide, docs/operations.md, run as it is printed.

Every fenced ```sh block of the guide is read out of the Markdown here and
run by bash, after the guide's own placeholders (its table: SERVICE,
/etc/cutover, /var/lib/cutover, /var/backups/cutover, 127.0.0.1:8080,
127.0.0.1:9180) are replaced by this test's values, against a real daemon
running the shop in the situation the procedure is for: a bad version live,
a canary in flight, a broken configuration, a lost state, a leaked secret,
a full disk, a crash loop.  A procedure runs all of its blocks, in order;
`test_every_block_is_run` fails on a block no test runs, so the guide and the
tests cannot drift apart.

What a procedure says in words and no block can do is done by the test and
named where it happens: the daemon started "the usual way" (systemd, which
this machine does not run, so the test starts `cutover daemon`), the fix of
a configuration error, the new value of a secret typed at the prompt (given
on standard input).
"""
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

from harness import *
from shopenv import *

HERE = os.path.dirname(os.path.abspath(__file__))
GUIDE = os.path.join(HERE, "..", "..", "docs", "operations.md")

# The guide's emergency procedures, each run by the test named beside it.
PROCEDURES = {
    "1. Roll back now": "test_roll_back_now",
    "2. Pause traffic to a service (maintenance)": "test_maintenance",
    "3. Abort a canary": "test_abort_a_canary",
    "4. Restart the daemon": "test_restart_the_daemon",
    "5. The daemon will not start": "test_the_daemon_will_not_start",
    "6. Restore the state from a backup": "test_restore_from_a_backup",
    "7. Rotate a leaked secret": "test_rotate_a_leaked_secret",
    "8. The disk under the state directory is full": "test_disk_full",
    "9. A service crash-loops": "test_crash_loop",
}
# Blocks outside the procedures, and the tests that run them.
OTHER_BLOCKS = {
    "preamble": "every test (the `cd` every block starts with)",
    "The main commands": "test_restore_from_a_backup (the daily backup)",
}


def guide_blocks():
    """{section: [(line, text)]}: the ```sh blocks of the guide by the
    heading they are under ("preamble" before the first ## heading; a
    ### procedure's own title for its blocks)."""
    blocks, section, current, start, indent = {}, "preamble", None, 0, 0
    with open(GUIDE) as f:
        lines = f.read().split("\n")
    for n, line in enumerate(lines, 1):
        s = line.strip()
        if current is not None:
            if s == "```":
                blocks.setdefault(section, []).append((start, "\n".join(current)))
                current = None
            else:
                current.append(line[indent:] if line[:indent].isspace() else line.strip())
            continue
        if s == "```sh":
            current, start, indent = [], n, len(line) - len(line.lstrip())
        elif line.startswith("### ") or line.startswith("## "):
            section = line.lstrip("#").strip()
    return blocks


def placeholders(c, backups=None, state_dir=None):
    return [
        ("/etc/cutover", c.dir),
        ("/var/lib/cutover", state_dir or f"{c.dir}/state"),
        ("/var/backups/cutover", backups or f"{c.dir}/backups"),
        ("127.0.0.1:8080", f"127.0.0.1:{c.port}"),
        ("127.0.0.1:9180", f"127.0.0.1:{c.admin}"),
    ]


def substitute(text, subst):
    """The guide's placeholders replaced: paths and addresses as text,
    words in capitals (SERVICE, VERSION) as whole words."""
    for old, new in subst + [("SERVICE", "shop")]:
        text = re.sub(rf"\b{old}\b", new, text) if old.isupper() else text.replace(old, new)
    return text


def run_block(c, text, subst, stdin=None, timeout=60):
    """One block in a fresh bash (-e: a failing command stops it), after the
    preamble's `cd`, with this build's cutover first on PATH and nothing in
    the environment pointing the CLI elsewhere."""
    pre = "".join(b for _, b in guide_blocks()["preamble"])
    script = "set -e\n" + substitute(pre, subst) + "\n" + substitute(text, subst) + "\n"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUTOVER_") or k == "CUTOVER_BIN"}
    env["PATH"] = os.path.dirname(os.path.abspath(BIN)) + ":" + env.get("PATH", "/usr/bin:/bin")
    return subprocess.run(["bash", "-c", script], input=stdin, capture_output=True, text=True, timeout=timeout,
                          env=env)


def procedure(c, title, expect, subst=None, stdin=None, between=None):
    """Run every block of the procedure TITLE in order; EXPECT holds each
    block's expected exit status (so its length is the number of blocks the
    guide has: a block added or removed fails here until the test follows).
    between[i](results) runs after block i (0-based), for what the guide asks
    a person to do between two blocks.  Returns the CompletedProcess list."""
    blocks = guide_blocks().get(title)
    check(blocks, f"no ```sh block under '### {title}' in docs/operations.md")
    eq(len(blocks), len(expect), f"blocks of '{title}' (docs/operations.md lines {[l for l, _ in blocks]})")
    subst = subst or placeholders(c)
    results = []
    for i, ((line, text), code) in enumerate(zip(blocks, expect)):
        r = run_block(c, text, subst, stdin=(stdin or {}).get(i))
        print(f"    operations.md:{line}: exit {r.returncode}: {text.splitlines()[-1][:70]}")
        eq(r.returncode, code, f"'{title}', the block of operations.md:{line}:\n{text}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}")
        results.append(r)
        if between and i in between:
            between[i](results)
    return results


def deployed(c, *versions):
    for v in versions:
        r = cli(c, "deploy", "shop", v)
        eq(r.returncode, 0, f"deploy {v}: {r.stdout}{r.stderr}")


def test_every_block_is_run():
    """Each ```sh block of the guide belongs to a procedure or a section this
    file runs, and each procedure of the guide is in PROCEDURES (and back)."""
    blocks = guide_blocks()
    for section, bl in blocks.items():
        check(section in PROCEDURES or section in OTHER_BLOCKS,
              f"docs/operations.md:{bl[0][0]}: a ```sh block under '{section}', which no test runs")
    with open(GUIDE) as f:
        text = f.read()
    emergency = text.split("## Emergency procedures", 1)[1].split("\n## ", 1)[0]
    titles = [l[4:].strip() for l in emergency.splitlines() if l.startswith("### ")]
    eq(titles, list(PROCEDURES), "the emergency procedures of the guide, in order")
    for title, test in PROCEDURES.items():
        check(callable(globals().get(test)), f"{test} (for '{title}') is missing")
        check(title in blocks, f"'{title}' has no command")


def test_roll_back_now():
    """1.1.0 is live and misbehaves: the guide's three blocks under load put
    1.0.0 back at once without a failed request."""
    with cutover(yaml_text=YAML) as c:
        add_releases(c, "1.0.0", "1.1.0")
        deployed(c, "1.0.0", "1.1.0")
        eq(version_served(c.port), "1.1.0", "before")
        with Load(c.port) as load:
            time.sleep(0.3)
            r = procedure(c, "1. Roll back now", [0, 0, 0])
            time.sleep(0.3)
        check("1.1.0" in r[0].stdout and "1.0.0" in r[0].stdout, f"status names both versions:\n{r[0].stdout}")
        check(r[1].stdout.splitlines()[-1].startswith("done"), f"the rollback's last line:\n{r[1].stdout}")
        eq(version_served(c.port), "1.0.0", "after the guide's rollback")
        eq(load.failures, [], "failed requests while following the guide")
        check(load.count > 10, f"too little load: {load.count}")
        check("rollback" in r[2].stdout, f"history shows the rollback:\n{r[2].stdout}")


CANARY = YAML.replace("      watch: 3s\n", "      watch: 3s\n      strategy: canary\n      steps: 20% 60s, 100%\n")


def test_abort_a_canary():
    """A canary of 1.1.0 holds 20 % for a minute: the guide's blocks put all
    traffic back on 1.0.0 at once, without a failed request."""
    with cutover(yaml_text=CANARY) as c:
        add_releases(c, "1.0.0", "1.1.0")
        deployed(c, "1.0.0")
        dep = subprocess.Popen([BIN, "deploy", "shop", "1.1.0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, env={**os.environ, "CUTOVER_SOCKET": f"{c.dir}/state/admin.sock"})
        try:
            wait_until(lambda: c.metric("cutover_version_weight_percent", version="1.1.0") == 20, 20,
                       what="the canary at 20 %")
            with Load(c.port) as load:
                time.sleep(0.3)
                r = procedure(c, "3. Abort a canary", [0, 0, 0])
                time.sleep(0.3)
            out, _ = dep.communicate(timeout=30)
        finally:
            if dep.poll() is None:
                dep.kill()
                dep.wait()
        check("1.1.0" in r[0].stdout, f"status shows the canary:\n{r[0].stdout}")
        check(dep.returncode != 0, f"the aborted deploy's command must fail:\n{out}")
        eq(c.metric("cutover_version_weight_percent", version="1.0.0"), 100, "weight of 1.0.0 after the abort")
        eq(version_served(c.port), "1.0.0", "after the abort")
        eq(load.failures, [], "failed requests while following the guide")
        check("abort" in r[2].stdout, f"history tells the abort:\n{r[2].stdout}")


def test_restart_the_daemon():
    """`cutover upgrade` as the guide prints it: a new daemon, the same
    instances, no failed request."""
    with cutover(yaml_text=YAML) as c:
        add_releases(c, "1.0.0")
        deployed(c, "1.0.0")
        old = json.loads(cli(c, "status", "--json").stdout)
        with Load(c.port) as load:
            time.sleep(0.3)
            procedure(c, "4. Restart the daemon", [0, 0])
            time.sleep(0.3)
        new = json.loads(cli(c, "status", "--json").stdout)
        check(new["pid"] != old["pid"], f"a new daemon answers (pid {new['pid']})")
        eq(live_pids(c), [m["live"]["pid"] for m in old["managed"]], "instances re-adopted, not restarted")
        eq(load.failures, [], "failed requests across the restart")
        check(load.count > 10, f"too little load: {load.count}")
        wait_until(lambda: c.proc.poll() is not None, 15, what="the old daemon to exit")
        r = cli(c, "shutdown", "--stop-services")
        eq(r.returncode, 0, f"shutdown of the new daemon: {r.stdout}{r.stderr}")


def test_the_daemon_will_not_start():
    """A configuration error stops the daemon: the guide's blocks show the
    error with its file and line, then (once the person fixed it) say the
    state is sound, and the daemon started again re-adopts the shop."""
    with cutover(yaml_text=YAML) as c:
        add_releases(c, "1.0.0")
        deployed(c, "1.0.0")
        pids = live_pids(c)
        eq(cli(c, "shutdown").returncode, 0, "cutover shutdown")
        c.proc.wait(15)
        good = open(c.cfg_path).read()
        bad = good.replace("      interval: 200ms\n", "      interval: soon\n")
        check(bad != good, "the test's configuration has a health interval to break")
        with open(c.cfg_path, "w") as f:
            f.write(bad)
        line = bad.split("\n").index("      interval: soon") + 1

        def fix(results):  # "Fix what it names": the person puts the good file back
            with open(c.cfg_path, "w") as f:
                f.write(good)

        r = procedure(c, "5. The daemon will not start", [2, 2, 0], between={1: fix})
        for i in (0, 1):
            check(f"cutover.yml:{line}:" in r[i].stdout + r[i].stderr and "interval" in r[i].stdout + r[i].stderr,
                  f"block {i + 1} names the file, line and field:\n{r[i].stdout}{r[i].stderr}")
        # step 4, "start the daemon the usual way": the test's way is cutover daemon
        restart_daemon(c)
        m = wait_live_settled(c)
        eq(m["live"]["pid"], pids[0], "the instance re-adopted")
        eq(version_served(c.port), "1.0.0", "served after the start")


SECRET_SERVICE = python_service(
    'digest = hashlib.sha256(os.environ.get("PAYMENT_API_KEY", "").encode()).hexdigest()\n',
    '{"version": version, "key_sha256": digest}')


def test_rotate_a_leaked_secret():
    """The service reads PAYMENT_API_KEY; the guide's blocks store a new
    value (typed at the prompt: given on stdin here), restart the service on
    it and show the audit; the value appears in no output and no log."""
    import hashlib
    old_value, new_value = "sk_live_old_4f9a1c2e7b", "sk_live_new_8d3b5e0a6c"
    yaml = YAML.replace("    env:\n", "    secrets: [PAYMENT_API_KEY]\n    env:\n")
    with cutover(yaml_text=yaml) as c:
        def ok(*args, stdin=None):
            r = subprocess.run([BIN, *args], input=stdin, capture_output=True, text=True, cwd=c.dir, timeout=30)
            eq(r.returncode, 0, f"cutover {' '.join(args)}: {r.stdout}{r.stderr}")
            return r
        pub = [l for l in ok("secrets", "keygen").stdout.split() if l.startswith("age1")][0]
        ok("secrets", "recipients", "add", pub)
        ok("secrets", "set", "PAYMENT_API_KEY", stdin=old_value)
        add_script_release(c, "1.0.0", SECRET_SERVICE)
        deployed(c, "1.0.0")

        def key_digest():
            return json.loads(http_get(c.port, "/", host="shop.test")[2])["key_sha256"]
        eq(key_digest(), hashlib.sha256(old_value.encode()).hexdigest(), "the service has the old value")
        r = procedure(c, "7. Rotate a leaked secret", [0, 0, 0], stdin={0: new_value + "\n"})
        eq(key_digest(), hashlib.sha256(new_value.encode()).hexdigest(), "the service runs on the new value")
        check("PAYMENT_API_KEY" in r[1].stdout, f"grep finds the service using it:\n{r[1].stdout}")
        check("secrets.set" in r[2].stdout and "restart" in r[2].stdout, f"the audit shows both:\n{r[2].stdout}")
        seen = "".join(x.stdout + x.stderr for x in r) + c.logs() + c.access_log()
        for v in (old_value, new_value):
            check(v not in seen, "a secret's value in the guide's output or the daemon's logs")


# 1.1.0 of the crash-loop test: healthy until the file `crash` appears in
# its working directory's parent test dir; from then on every start says why
# it dies and exits.
CRASHES = python_service(r'''marker = os.environ["CRASH_MARKER"]
def die():
    print("fatal: cannot reach the payment database at 127.0.0.1:5432", file=sys.stderr, flush=True)
    os._exit(3)
if os.path.exists(marker):
    time.sleep(0.2)
    die()
def watch():
    while not os.path.exists(marker):
        time.sleep(0.05)
    die()
threading.Thread(target=watch, daemon=True).start()
''')


def test_crash_loop():
    """1.1.0 went live, its rollback window passed (1.0.0 stopped, so cutover
    does not roll back by itself), then it dies at every start: the guide's
    blocks show the restarts, the reason in its log, and roll back to 1.0.0,
    started again from the store."""
    yaml = YAML.replace("      SHOP_DB:", "      CRASH_MARKER: {DIR}/crash\n      SHOP_DB:")
    yaml = yaml.replace("      rollback_window: 60s\n", "      rollback_window: 1s\n").replace("      watch: 3s\n", "      watch: 1s\n")
    check("rollback_window: 1s" in yaml, "the shop's configuration has a rollback window to shorten")
    with cutover(yaml_text=yaml) as c:
        add_releases(c, "1.0.0")
        add_script_release(c, "1.1.0", CRASHES)
        deployed(c, "1.0.0", "1.1.0")
        wait_until(lambda: managed(c)["previous"] is None, 15, what="1.0.0 stopped after its rollback window")
        open(os.path.join(c.dir, "crash"), "w").close()
        wait_until(lambda: (managed(c)["live"] or {}).get("restarts", 0) >= 4, 30, what="four restarts of 1.1.0")
        eq(managed(c)["live"]["version"], "1.1.0", "still live: cutover had no warm version to go back to")
        r = procedure(c, "9. A service crash-loops", [0, 0, 0], subst=placeholders(c) + [("VERSION", "1.1.0")])
        check("1.1.0" in r[0].stdout, f"status shows the crashing version:\n{r[0].stdout}")
        check("fatal: cannot reach the payment database" in r[1].stdout, f"the log tells why:\n{r[1].stdout}")
        eq(version_served(c.port), "1.0.0", "after the rollback")


def test_maintenance():
    """The guide's blocks put the shop in maintenance (503, Retry-After, the
    page), show it, and bring it back; the instance is never restarted."""
    with cutover(yaml_text=YAML) as c:
        add_releases(c, "1.0.0")
        deployed(c, "1.0.0")
        pids = live_pids(c)
        page = "<!doctype html><title>Back soon</title><p>The shop is being restocked.</p>\n"
        with open(os.path.join(c.dir, "maintenance.html"), "w") as f:
            f.write(page)

        def during(results):
            status, headers, body = http_get(c.port, "/api/catalog", host="shop.test")
            eq((status, body.decode()), (503, page), "a shopper's answer during maintenance")
        r = procedure(c, "2. Pause traffic to a service (maintenance)", [0, 0, 0], between={1: during})
        head = r[1].stdout.splitlines()
        eq(head[0].strip(), "HTTP/1.1 503 Service Unavailable", "curl's first line during maintenance")
        check(any(l.lower().startswith("retry-after: 600") for l in head), f"Retry-After in:\n{r[1].stdout}")
        check("maintenance" in r[1].stdout.split("\n", 5)[-1], f"status shows the maintenance:\n{r[1].stdout}")
        eq(r[2].stdout.strip().splitlines()[-1], "HTTP/1.1 200 OK", "curl's first line after maintenance off")
        eq(live_pids(c), pids, "the instance kept running")


def test_restore_from_a_backup():
    """The daily backup block, a deploy after it, then the guide's restore:
    the daemon started on the restored state has the history up to the
    backup, and serves what served before (1.1.0, deployed after the
    backup), its processes adopted, none left unknown."""
    backups = tempfile.mkdtemp(prefix="cutover-it-backups-")
    try:
        with cutover(yaml_text=YAML) as c:
            subst = placeholders(c, backups=backups)
            add_releases(c, "1.0.0", "1.1.0")
            deployed(c, "1.0.0")
            daily = guide_blocks()["The main commands"]
            eq(len(daily), 1, "blocks under 'The main commands'")
            r = run_block(c, daily[0][1], subst)
            eq(r.returncode, 0, f"the daily backup: {r.stdout}{r.stderr}")
            eq(len(os.listdir(backups)), 1, "one backup file")
            deployed(c, "1.1.0")  # after the backup: not in it

            def start(results):  # step 3, "start the daemon the usual way"
                c.proc.wait(15)
                restart_daemon(c)
            r = procedure(c, "6. Restore the state from a backup", [0, 0, 0], subst=subst, between={1: start})
            hist = history(c)
            eq([d["to_version"] for d in hist if d.get("strategy") != "rollback"][:1], ["1.0.0"],
               "the newest deployment in the restored history")
            check(os.path.exists(f"{c.dir}/state") and any(n.startswith("state.db.before-restore-")
                                                           for n in os.listdir(f"{c.dir}/state")),
                  "the replaced database kept beside it")
            check("kept: shop serves 1.1.0, as before the restore (the backup had 1.0.0)" in r[1].stdout,
                  f"the restore says what it kept:\n{r[1].stdout}")
            wait_live_settled(c)
            eq(version_served(c.port), "1.1.0", "served after the restore: the present, not the backup's 1.0.0")
            eq(sorted(processes_of(c.dir)), sorted(live_pids(c)), "every shop process adopted by the daemon")
    finally:
        shutil.rmtree(backups, ignore_errors=True)


def test_disk_full():
    """The state directory on a small tmpfs filled by old releases: adding a
    release fails; the guide's blocks show what fills it and prune; then the
    release goes in and deploys."""
    check(os.geteuid() == 0, "this test mounts a tmpfs: it runs as root (CI does)")
    mnt = tempfile.mkdtemp(prefix="cutover-it-disk-")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m,mode=0700", "tmpfs", mnt], check=True)
    try:
        yaml = YAML.replace("state_dir: {DIR}/state", "state_dir: " + mnt)
        check(yaml != YAML, "the shop's configuration names its state_dir")
        with cutover(yaml_text=yaml) as c:
            def here(*args):  # the CLI finds ./cutover.yml, so the state and socket on the tmpfs
                return subprocess.run([BIN, *args], capture_output=True, text=True, cwd=c.dir, timeout=60,
                                      env={k: v for k, v in os.environ.items() if not k.startswith("CUTOVER_")})

            def add(version, path):
                return here("release", "add", "shop", version, path)

            def deploy(version):
                r = here("deploy", "shop", version)
                eq(r.returncode, 0, f"deploy {version}: {r.stdout}{r.stderr}")
            eq(add("1.0.0", shop_binary("1.0.0")).returncode, 0, "release add 1.0.0")
            deploy("1.0.0")
            blob = os.path.join(c.dir, "old-artifact")
            n = 0
            for size in (1 << 20, 128 << 10):  # old releases until the disk refuses one, then smaller ones
                while True:
                    n += 1
                    with open(blob, "wb") as f:
                        f.write(os.urandom(size))
                    r = add(f"0.{n}.0", blob)
                    if r.returncode != 0:
                        break
                    check(n < 60, "the 6 MiB disk never filled")
            r = add("1.1.0", shop_binary("1.1.0"))
            check(r.returncode != 0, "a release added to a full disk must fail")
            print(f"    full after {n - 1} old releases: {(r.stdout + r.stderr).strip()[:120]}")
            subst = placeholders(c, state_dir=mnt)
            r = procedure(c, "8. The disk under the state directory is full", [0, 0, 0], subst=subst)
            check("releases" in r[0].stdout, f"du shows the release store:\n{r[0].stdout}")
            eq(add("1.1.0", shop_binary("1.1.0")).returncode, 0, "release add 1.1.0 after the prune")
            deploy("1.1.0")
            eq(version_served(c.port), "1.1.0", "deployed after the prune")
            eq(here("shutdown", "--stop-services").returncode, 0, "shutdown")
            c.proc.wait(15)
    finally:
        for pid in pids_under(mnt):  # instances run from the release store on the tmpfs
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
        subprocess.run(["umount", mnt])
        os.rmdir(mnt)


def test_every_alert_has_its_section():
    """Each alert of contrib/prometheus/cutover-rules.yml has a section in the
    guide, at the anchor its runbook_url names, and each alert section of
    the guide is an alert of the rules."""
    import yaml
    rules = yaml.safe_load(open(os.path.join(HERE, "..", "..", "contrib", "prometheus", "cutover-rules.yml")))
    alerts = {r["alert"]: r for g in rules["groups"] for r in g["rules"] if "alert" in r}
    check(len(alerts) >= 9, f"alerts in the rules: {sorted(alerts)}")
    text = open(GUIDE).read()
    anchors = re.findall(r'<a id="(alert-[a-z0-9]+)"></a>\n### (\w+)', text)
    eq(sorted(name for _, name in anchors), sorted(alerts), "the alert sections of the guide")
    for anchor, name in anchors:
        eq(anchor, "alert-" + name.lower(), f"the anchor of {name}")
        eq(alerts[name]["annotations"]["runbook_url"], "docs/operations.md#" + anchor, f"runbook_url of {name}")
        check(f"### {name} ({alerts[name]['labels']['severity']})" in text, f"{name}'s severity in its heading")
