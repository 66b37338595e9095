"""test_notify.py - webhooks on deploy events (issue 12, point 6;
docs/internals/notify.md), with the real daemon, real releases of
examples/shop and real HTTP receivers on 127.0.0.1 in this process.

* A receiver gets started, step and succeeded for a good deploy and
  rolled-back for one cutover rolls back, in the order of the events, as
  Slack-compatible JSON ({"text", "blocks"}) or, with format: json, the
  event in its envelope; events: filters.
* A receiver that answers 500 then 200 gets the notification again (a
  retry, counted); one that answers 404 is not retried (a refusal,
  counted failed).
* A receiver that is down (a closed port) or hangs does not slow a deploy
  (timed against the same deploys without webhooks), and its failures are
  counted in /metrics and logged; a full queue drops the oldest; at
  shutdown what is left is given up within about 2 s.
* A webhook's URL kept in the encrypted secrets file (url_secret:) is
  used and never logged; a secret value in an event's detail (a
  rejection's reason) reaches the receiver as [redacted:NAME].
* A reload (SIGHUP) adds a webhook (config show names its origin) and
  removes it.
"""
import contextlib
import http.server
import json
import os
import secrets as pysecrets
import signal
import socketserver
import subprocess
import tempfile
import threading
import time

from harness import *
from shopenv import *

FAST = YAML.replace("watch: 3s", "watch: 0s")


class Receiver:
    """An HTTP server on 127.0.0.1 that records every POST (path, headers,
    JSON body, when) and answers with the next status of `statuses` (then
    200), or never answers when hang is set."""

    def __init__(self, statuses=(), hang=False):
        self.statuses, self.hang = list(statuses), hang
        self.posts, self.lock, self.stop = [], threading.Lock(), threading.Event()
        rec = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with rec.lock:
                    rec.posts.append({"path": self.path, "headers": dict(self.headers), "raw": body,
                                      "json": json.loads(body), "at": time.time()})
                    status = rec.statuses.pop(0) if rec.statuses else 200
                if rec.hang:
                    rec.stop.wait(60)
                    return
                out = b"ok" if status == 200 else b"no_service" if status == 404 else b"internal error"
                self.send_response(status)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *a):
                pass

        class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = S(("127.0.0.1", free_port()), H)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def url(self, path="/hook"):
        return f"http://127.0.0.1:{self.port}{path}"

    def bodies(self, path=None):
        with self.lock:
            return [p["json"] for p in self.posts if path is None or p["path"] == path]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


def webhooks_yaml(*hooks):
    """notifications: with each hook a dict of its settings."""
    y = "notifications:\n  webhooks:\n"
    for h in hooks:
        first = True
        for k, v in h.items():
            y += ("    - " if first else "      ") + f"{k}: {json.dumps(v) if isinstance(v, list) else v}\n"
            first = False
    return y


def deploy(c, version, code=0):
    t0 = time.time()
    r = cli(c, "deploy", "shop", version)
    eq(r.returncode, code, f"deploy {version}: {r.stdout}{r.stderr}")
    return time.time() - t0


def slack_texts(bodies):
    return [b["text"] for b in bodies]


def check_slack(body):
    """The shape Slack's incoming webhooks take."""
    check(isinstance(body.get("text"), str) and body["text"], f"text: {body}")
    blocks = body.get("blocks")
    check(isinstance(blocks, list) and blocks, f"blocks: {body}")
    eq(blocks[0]["type"], "section", "first block")
    eq(blocks[0]["text"]["type"], "mrkdwn", "section text type")
    for b in blocks[1:]:
        eq(b["type"], "context", "second block")
        check(all(e["type"] == "mrkdwn" and e["text"] for e in b["elements"]), f"context: {b}")


def test_deploy_events_in_order_as_slack_and_json():
    with Receiver() as rx:
        hooks = webhooks_yaml({"url": rx.url("/slack"), "events": ["started", "succeeded", "rolled-back", "failed"]},
                              {"url": rx.url("/json"), "format": "json", "name": "raw"})
        with cutover(yaml_text=YAML.replace("services:", hooks + "services:")) as c:
            add_releases(c, "1.0.0")
            add_script_release(c, "2.0.0", DIES_IN_THE_WATCH)
            deploy(c, "1.0.0")
            # the result event follows its write to the state, which `cutover deploy` may not wait for
            wait_until(lambda: len(rx.bodies("/slack")) >= 2, timeout=10, what="deploy 1's notifications")
            deploy(c, "2.0.0", code=1)  # rolled back by cutover in its watch window
            wait_until(lambda: len(rx.bodies("/slack")) >= 4, timeout=10, what="four Slack notifications")
            time.sleep(0.3)
            slack = rx.bodies("/slack")
            for b in slack:
                check_slack(b)
            texts = slack_texts(slack)
            eq(len(texts), 4, f"Slack notifications: {texts}")
            check(texts[0].startswith(":rocket: deploy 1 of shop to 1.0.0 started"), texts[0])
            check(texts[1].startswith(":white_check_mark: deploy 1 of shop to 1.0.0 succeeded"), texts[1])
            check(texts[2].startswith(":rocket: deploy 2 of shop to 2.0.0 started: 1.0.0"), texts[2])
            check(texts[3].startswith(":leftwards_arrow_with_hook: deploy 2 of shop to 2.0.0 rolled back: "),
                  texts[3])
            check("traffic back on 1.0.0" in texts[3], f"the reason: {texts[3]}")
            post = rx.posts[0]
            check(post["headers"].get("Content-Type", "").startswith("application/json"), post["headers"])
            check(post["headers"].get("User-Agent", "").startswith("cutover/"), post["headers"])

            raw = rx.bodies("/json")
            eq([(b["notification"], b["kind"], b["event"]["id"]) for b in raw],
               [("started", "deployment", 1), ("step", "deployment", 1), ("succeeded", "deployment", 1),
                ("started", "deployment", 2), ("step", "deployment", 2), ("rolled-back", "deployment", 2)],
               "json notifications, in order")
            eq(raw[2]["event"]["result"], "done", "the event as the event stream has it")
            check("switched" == raw[1]["event"]["phase"] and "traffic on 1.0.0" in raw[1]["event"]["detail"],
                  f"the step: {raw[1]['event']}")
            eq(c.metric("cutover_webhook_deliveries_total", webhook="0", host=f"127.0.0.1:{rx.port}", result="ok"),
               4, "Slack deliveries")
            eq(c.metric("cutover_webhook_deliveries_total", webhook="raw", result="ok"), 6, "json deliveries")
            eq(c.metric("cutover_webhook_deliveries_total", result="failed"), 0, "failures")
            eq(c.metric("cutover_webhook_queue_depth"), 0, "queued")
            check(f"/slack" not in c.logs() and "/json" not in c.logs(), "the URL's path is never logged")
            eq(c.shutdown_all(), 0, "daemon exit status")


def test_retry_after_a_500_and_no_retry_after_a_404():
    with Receiver(statuses=[500]) as flaky, Receiver(statuses=[404]) as gone:
        hooks = webhooks_yaml({"url": flaky.url(), "events": ["succeeded"], "backoff": "200ms"},
                              {"url": gone.url(), "events": ["succeeded"], "backoff": "200ms"})
        with cutover(yaml_text=FAST.replace("services:", hooks + "services:")) as c:
            add_releases(c, "1.0.0")
            deploy(c, "1.0.0")
            wait_until(lambda: len(flaky.posts) >= 2, timeout=10, what="the retry")
            time.sleep(0.5)
            eq(len(flaky.posts), 2, "one failed attempt, one retry")
            eq(flaky.posts[0]["raw"], flaky.posts[1]["raw"], "the same body again")
            check(flaky.posts[1]["at"] - flaky.posts[0]["at"] >= 0.14, "after the backoff (200 ms, jitter 3/4)")
            eq(len(gone.posts), 1, "a 404 is not retried")
            m = lambda **kw: c.metric("cutover_webhook_deliveries_total", **kw)
            eq((m(webhook="0", result="ok"), m(webhook="0", result="failed")), (1, 0), "flaky: delivered")
            eq(c.metric("cutover_webhook_retries_total", webhook="0"), 1, "flaky: one retry")
            eq((m(webhook="1", result="ok"), m(webhook="1", result="failed")), (0, 1), "gone: failed")
            eq(c.metric("cutover_webhook_retries_total", webhook="1"), 0, "gone: no retry")
            logs = c.logs()
            check(f"webhook 0 (http://127.0.0.1:{flaky.port}): succeeded notification, attempt 1 of 6 failed: "
                  "HTTP 500 (internal error); next attempt in" in logs, logs[-3000:])
            check(f"webhook 1 (http://127.0.0.1:{gone.port}): succeeded notification not delivered after 1 "
                  "attempt: HTTP 404 (no_service) (a refusal: not retried)" in logs, logs[-3000:])
            eq(c.shutdown_all(), 0, "daemon exit status")


def timed_deploys(yaml):
    """The durations of deploying 1.0.0 then 1.1.0 on a fresh daemon."""
    with cutover(yaml_text=yaml) as c:
        add_releases(c, "1.0.0", "1.1.0")
        times = (deploy(c, "1.0.0"), deploy(c, "1.1.0"))
        eq(c.shutdown_all(), 0, "daemon exit status")
        return times


def test_a_receiver_down_or_hanging_does_not_slow_a_deploy():
    base = timed_deploys(FAST)
    closed = free_port()  # nothing listens there
    with Receiver(hang=True) as hung:
        hooks = webhooks_yaml({"url": f"http://127.0.0.1:{closed}/down", "retries": 1, "backoff": "100ms"},
                              {"url": hung.url(), "timeout": "3s", "retries": 0, "queue": 1})
        with cutover(yaml_text=FAST.replace("services:", hooks + "services:")) as c:
            add_releases(c, "1.0.0", "1.1.0")
            took = (deploy(c, "1.0.0"), deploy(c, "1.1.0"))
            for t, b in zip(took, base):
                check(t < b + 3, f"deploys took {took} with the receivers down and hanging, {base} without")
            # down: every notification tried twice, then counted failed
            wait_until(lambda: c.metric("cutover_webhook_deliveries_total", webhook="0", result="failed") == 6,
                       timeout=10, what="six failed deliveries to the closed port")
            eq(c.metric("cutover_webhook_retries_total", webhook="0"), 6, "one retry each")
            logs = c.logs()
            check(f"webhook 0 (http://127.0.0.1:{closed}): started notification, attempt 1 of 2 failed: " in logs and
                  "Failed to connect" in logs, logs[-3000:])
            # hanging: one in flight at a time (3 s each), one waiting, the others dropped
            dropped = c.metric("cutover_webhook_deliveries_total", webhook="1", result="dropped")
            check(dropped >= 3, f"dropped by the full queue: {dropped}")
            check("its queue is full (queue: 1): the oldest notification waiting (" in logs, logs[-3000:])
            wait_until(lambda: c.metric("cutover_webhook_deliveries_total", webhook="1", result="failed") >= 1,
                       timeout=10, what="a timed-out delivery")
            check(f"webhook 1 (http://127.0.0.1:{hung.port}): " in c.logs() and "Operation timed out" in c.logs(),
                  c.logs()[-3000:])
            # shutdown: what is left is given up within about 2 s
            r = cli(c, "deploy", "shop", "1.0.0")  # two more notifications for the hung receiver
            eq(r.returncode, 0, f"rollback deploy: {r.stdout}{r.stderr}")
            check(c.metric("cutover_webhook_queue_depth", webhook="1") >= 1, "something queued at shutdown")
            t0 = time.time()
            c.terminate()
            stopped = time.time() - t0
            check(stopped < 6, f"the daemon took {stopped:.1f}s to stop")
            check("not delivered by shutdown: given up" in c.logs(), c.logs()[-2000:])
            check("/down" not in c.logs() and "/hook" not in c.logs(), "the URL's path is never logged")


SECRET_YAML = """state_dir: {DIR}/state
listen: 127.0.0.1:{PORT}
admin: 127.0.0.1:{ADMIN}
approval: required
notifications:
  webhooks:
    - url_secret: HOOK_URL
      events: [approval-needed, failed]
    - url: {RAW}
      format: json
      events: [failed]
services:
  shop:
    run: {BUILD}/shop-${VERSION} --port ${PORT}
    health:
      path: /health
      interval: 200ms
      timeout: 150ms
    routes:
      - path: /
"""


@contextlib.contextmanager
def daemon_with_secrets(rx, values):
    """A daemon whose secrets file (set up before it starts, as cutover
    secrets does) holds `values`; cutover.yml is SECRET_YAML."""
    d = tempfile.mkdtemp(prefix="cutover-notify-")
    port, admin = free_port(), free_port()
    text = SECRET_YAML.replace("${", "\x00").replace("{PORT}", str(port)).replace("{ADMIN}", str(admin))
    text = text.replace("{DIR}", d).replace("{RAW}", rx.url("/raw")).replace("{BUILD}", os.path.join(BUILD, "examples",
                                                                                                      "shop"))
    with open(os.path.join(d, "cutover.yml"), "w") as f:
        f.write(text.replace("\x00", "${"))
    err = open(os.path.join(d, "stderr.log"), "w")
    proc = None

    def run(*args, stdin=None):
        return subprocess.run([BIN, *args], input=stdin, capture_output=True, text=True, timeout=30, cwd=d)
    try:
        eq(run("secrets", "keygen").returncode, 0, "keygen")
        pub = subprocess.run(["age-keygen", "-y", os.path.join(d, "state", "identity.key")], capture_output=True,
                             text=True).stdout.strip()
        eq(run("secrets", "recipients", "add", pub).returncode, 0, "recipients add")
        for name, value in values.items():
            r = run("secrets", "set", name, stdin=value + "\n")
            eq(r.returncode, 0, f"secrets set {name}: {r.stderr}")
        proc = subprocess.Popen([BIN, "daemon"], stdout=err, stderr=err, cwd=d)
        c = Cutover(proc, port, admin, os.path.join(d, "cutover.yml"), d)
        wait_port(port)
        wait_port(admin)
        yield c
    finally:
        if proc and proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        for pid in pids_under(d):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        err.close()
        if os.environ.get("CUTOVER_KEEP_TMP") != "1":
            subprocess.run(["rm", "-rf", d])


def test_url_secret_and_a_secret_in_a_detail_is_redacted():
    password = 'pw"q\\' + pysecrets.token_hex(12)
    token = pysecrets.token_hex(16)
    with Receiver() as rx:
        with daemon_with_secrets(rx, {"HOOK_URL": rx.url(f"/hook/{token}"), "DB_PASSWORD": password}) as c:
            add_releases(c, "1.0.0")
            r = cli(c, "deploy", "shop", "1.0.0")
            eq(r.returncode, 4, f"the deploy awaits approval: {r.stdout}{r.stderr}")
            wait_until(lambda: len(rx.posts) >= 1, timeout=10, what="the approval-needed notification")
            eq(rx.posts[0]["path"], f"/hook/{token}", "posted to the URL kept in the secrets file")
            text = rx.posts[0]["json"]["text"]
            check(text.startswith(":raised_hand: deploy 1 of shop to 1.0.0 awaits approval"), text)
            check("cutover approve 1" in rx.posts[0]["json"]["blocks"][0]["text"]["text"], rx.posts[0]["json"])

            r = cli(c, "reject", "1", "--reason", f"the password {password} is in this reason")
            eq(r.returncode, 0, f"reject: {r.stdout}{r.stderr}")
            wait_until(lambda: len(rx.posts) >= 3, timeout=10, what="the two failed notifications")
            time.sleep(0.3)
            slack = [p for p in rx.posts if p["path"].startswith("/hook/")]
            raw = [p for p in rx.posts if p["path"] == "/raw"]
            eq((len(slack), len(raw)), (2, 1), "notifications per webhook")
            check(slack[1]["json"]["text"].startswith(":x: deploy 1 of shop to 1.0.0 was rejected"),
                  slack[1]["json"]["text"])
            eq(raw[0]["json"]["event"]["result"], "rejected", "the json event")
            forms = [password.encode(), json.dumps(password)[1:-1].encode()]
            for p in slack[1:] + raw:
                check(b"[redacted:DB_PASSWORD]" in p["raw"], f"redacted in the body: {p['raw'][:300]!r}")
                check(not any(f in p["raw"] for f in forms), "the password reached a receiver")
            logs = c.logs()
            check(token not in logs, "the webhook's secret URL is not logged")
            check(not any(f.decode() in logs for f in forms), "the password is not logged")
            check(not any(f in p["raw"] for f in forms for p in rx.posts), "the password reached a receiver")
            eq(c.metric("cutover_webhook_deliveries_total", webhook="0", result="ok"), 2, "deliveries")
            check(token not in c.metrics(), "the secret URL is not in /metrics")
            eq(c.terminate(), 0, "daemon exit status")


def test_a_reload_adds_and_removes_webhooks():
    with Receiver() as rx:
        hooks = webhooks_yaml({"url": rx.url(), "events": ["succeeded"], "name": "team"})
        with cutover(yaml_text=FAST) as c:
            add_releases(c, "1.0.0", "1.1.0")
            deploy(c, "1.0.0")
            eq(c.metric("cutover_webhook_queue_depth"), 0, "no webhook yet")
            check("# TYPE cutover_webhook_deliveries_total counter" in c.metrics(), "the families are there")
            text = open(c.cfg_path).read().replace("services:", hooks + "services:")
            c.reload(text)
            wait_until(lambda: "configuration reloaded" in c.logs(), timeout=10, what="the reload")
            r = subprocess.run([BIN, "config", "show", "--config", c.cfg_path], capture_output=True, text=True,
                               timeout=30)
            eq(r.returncode, 0, f"config show: {r.stderr}")
            check("notifications:\n  webhooks:\n    - name: team" in r.stdout and "# default" in r.stdout, r.stdout)
            deploy(c, "1.1.0")
            # (deploy 1's result event may come after the reload: it follows its write to the state)
            second = lambda: [t for t in slack_texts(rx.bodies()) if "deploy 2 " in t]
            wait_until(lambda: second(), timeout=10, what="the notification after the reload")
            eq(second(), [":white_check_mark: deploy 2 of shop to 1.1.0 succeeded"], "deploy 2's notification")
            time.sleep(0.3)
            eq(c.metric("cutover_webhook_deliveries_total", webhook="team", result="ok"), len(rx.posts), "delivered")
            c.reload(text.replace(hooks, ""))
            wait_until(lambda: c.logs().count("configuration reloaded") == 2, timeout=10, what="the second reload")
            check('webhook="team"' not in c.metrics(), "a removed webhook leaves the exposition")
            before = len(rx.posts)
            deploy(c, "1.0.0")
            time.sleep(0.5)
            eq(len(rx.posts), before, "nothing more after its removal")
            eq(c.shutdown_all(), 0, "daemon exit status")
