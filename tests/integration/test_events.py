"""test_events.py - the admin API's event stream (GET /v1/events, Server-Sent
Events on the daemon's Unix socket) and the route table's answers: a
deploy's every phase and its instances' changes arrive as they happen, in
order, read the way `curl --no-buffer --unix-socket SOCK .../v1/events` does;
a hand change of a managed service's targets is refused with 409."""
import json
import socket
import time

from harness import *
from shopenv import *


class EventStream:
    """A reader of GET /v1/events on the daemon's admin socket."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(10)
        self.sock.connect(path)
        self.sock.sendall(b"GET /v1/events HTTP/1.1\r\nHost: cutover\r\n\r\n")
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            check(chunk, "the stream closed before its head")
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        self.head = head.decode()

    def next(self, timeout=10):
        """The next event as (kind, data as JSON, id); comments are skipped."""
        end = time.time() + timeout
        while True:
            while b"\n\n" in self.buf:
                block, self.buf = self.buf.split(b"\n\n", 1)
                fields = {}
                for line in block.decode().split("\n"):
                    if line.startswith(":"):
                        continue
                    k, _, v = line.partition(": ")
                    fields[k] = v
                if "event" in fields:
                    return fields["event"], json.loads(fields["data"]), int(fields.get("id", "0"))
            left = end - time.time()
            check(left > 0, "no event within the time limit")
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            check(chunk, "the event stream closed")
            self.buf += chunk

    def until(self, pred, timeout=30):
        seen = []
        end = time.time() + timeout
        while True:
            ev = self.next(max(0.1, end - time.time()))
            seen.append(ev)
            if pred(ev):
                return seen

    def close(self):
        self.sock.close()


def test_events_stream_a_deploy_as_it_happens():
    with cutover(yaml_text=YAML) as c:
        add_releases(c, "1.0.0", "1.1.0")
        s = EventStream(f"{c.dir}/state/admin.sock")
        try:
            check("200 OK" in s.head and "text/event-stream" in s.head, f"stream head:\n{s.head}")
            kind, hello, first_id = s.next()
            eq(kind, "hello", "first event")
            check(hello["pid"] > 0 and hello["version"], f"hello: {hello}")
            r = cli(c, "deploy", "shop", "1.0.0")
            eq(r.returncode, 0, f"deploy 1.0.0: {r.stdout}{r.stderr}")
            seen = s.until(lambda e: e[0] == "deployment" and e[1].get("result"))
            phases = [e[1]["phase"] for e in seen if e[0] == "deployment"]
            eq(phases, ["starting", "health-checking", "healthy", "switched", "analysis", "done"], "phases of the first deploy, in order")
            states = [e[1]["state"] for e in seen if e[0] == "instance"]
            check("started" in states and "healthy" in states, f"instance events: {states}")
            ids = [e[2] for e in seen]
            eq(ids, sorted(ids), "event ids increase")
            check(ids[0] > first_id, f"ids after hello: {ids}")
            dep = [e[1] for e in seen if e[0] == "deployment"][-1]
            eq((dep["service"], dep["version"], dep["kind"], dep["result"]), ("shop", "1.0.0", "deploy", "done"),
               "the finished deployment")

            # the second deploy: the old version's instance stops after its drain
            r = cli(c, "deploy", "shop", "1.1.0")
            eq(r.returncode, 0, f"deploy 1.1.0: {r.stdout}{r.stderr}")
            seen = s.until(lambda e: e[0] == "deployment" and e[1].get("result"))
            ev = [e[1] for e in seen if e[0] == "deployment"]
            eq(ev[0]["from_version"], "1.0.0", "from_version")
            eq(ev[-1]["result"], "done", "second deploy result")
        finally:
            s.close()


def test_events_stream_survives_a_reader_that_leaves():
    """Readers come and go; the daemon keeps serving and streaming to the others."""
    with cutover(yaml_text=YAML) as c:
        add_releases(c, "1.0.0")
        gone = EventStream(f"{c.dir}/state/admin.sock")
        gone.next()
        gone.close()
        s = EventStream(f"{c.dir}/state/admin.sock")
        try:
            s.next()
            r = cli(c, "deploy", "shop", "1.0.0")
            eq(r.returncode, 0, f"deploy: {r.stdout}{r.stderr}")
            s.until(lambda e: e[0] == "deployment" and e[1].get("result") == "done")
        finally:
            s.close()


def test_put_targets_of_a_managed_service_is_refused():
    with cutover(yaml_text=YAML) as c:
        add_releases(c, "1.0.0")
        eq(cli(c, "deploy", "shop", "1.0.0").returncode, 0, "deploy 1.0.0")
        status, body = unix_request(f"{c.dir}/state/admin.sock", "PUT", "/v1/services/shop/targets",
                                    json.dumps({"targets": [{"address": "127.0.0.1:9"}]}).encode())
        eq(status, 409, f"hand PUT on a managed service: {body}")
        check("managed by the deployer" in json.loads(body)["error"], body)
        eq(version_served(c.port), "1.0.0", "still served by the deployed version")
        status, body = unix_request(f"{c.dir}/state/admin.sock", "GET", "/v1/services/shop/targets")
        eq(status, 405, f"GET on a PUT endpoint: {body}")
        check("use PUT" in body, body)
        status, body = unix_request(f"{c.dir}/state/admin.sock", "GET", "/v1/status")
        svc = [x for x in json.loads(body)["services"] if x["name"] == "shop"][0]
        eq(svc["managed"], True, "status says managed")
        eq([(g["version"], g["weight"]) for g in svc["versions"]], [("1.0.0", 1)], "version groups in status")


