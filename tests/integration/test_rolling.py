"""test_rolling.py - rolling updates keep their minimum capacity (issue 10,
point 7): a service of 4 instances with `max_unavailable: 1` never has
fewer than 3 instances that are both healthy and routed, sampled every
10 ms from GET /v1/status on the admin socket, whether the update runs to
its end, is promoted, or is aborted halfway (`cutover abort`), with
`max_surge: 0` and with the default 25 %.  Shoppers load the service all
along and not one of their requests fails.

An instance counts when the deployer's view says it is healthy and has a
share of the traffic (`managed[].instances[]`: `health` and
`traffic_percent`), and the proxy's view routes to it (its address is a
target of a version group with a weight, `services[].versions[]`).
"""
import os
import pwd
import threading
import time

from harness import *
from shopenv import cli, history
from faulty import *

ME = pwd.getpwuid(os.getuid()).pw_name
MIN = 3  # instances: 4, max_unavailable: 1


def rolling_yaml(surge):
    deploy = "strategy: rolling\nmax_unavailable: 1\nmin_ready: 200ms\nbatch_hold: 500ms\nwatch: 500ms"
    return service_yaml(deploy + (f"\nmax_surge: {surge}" if surge is not None else ""), "instances: 4")


class Capacity:
    """Samples /v1/status every 10 ms in a thread while the with-block runs
    (and for at most max_s).  .samples: [(monotonic time, healthy and routed
    per the deployer, healthy and routed per the proxy too, instances)]."""

    def __init__(self, c, interval=0.01, max_s=60.0):
        self.c, self.interval, self.max_s = c, interval, max_s
        self.samples, self.errors = [], []
        self.stop = threading.Event()

    def sample(self):
        st = status(self.c)
        m = st["managed"][0]
        svc = [s for s in st["services"] if s["name"] == "shop"][0]
        routed = {t["address"] for g in svc["versions"] if g["weight"] > 0 for t in g["targets"]}
        healthy = [i for i in m["instances"] if i["health"] == "healthy" and i["traffic_percent"] > 0]
        both = [i for i in healthy if i["address"] in routed]
        inst = tuple((i["version"], i["health"], i["traffic_percent"]) for i in m["instances"])
        self.samples.append((time.monotonic(), len(healthy), len(both), inst))

    def _run(self):
        start = time.monotonic()
        k = 0
        while not self.stop.is_set() and time.monotonic() < start + self.max_s:
            try:
                self.sample()
            except Exception as e:  # noted: a sampler that fails proves nothing
                self.errors.append(repr(e))
            # on a 10 ms grid (a sample that took longer starts the next at once)
            k = max(k + 1, int((time.monotonic() - start) / self.interval))
            self.stop.wait(max(0.0, start + k * self.interval - time.monotonic()))

    def __enter__(self):
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.t.join(10)

    def check(self, what):
        eq(self.errors[:3], [], f"{what}: errors of the sampler")
        check(len(self.samples) > 100, f"{what}: only {len(self.samples)} samples")
        gaps = [b[0] - a[0] for a, b in zip(self.samples, self.samples[1:])]
        low = [s for s in self.samples if min(s[1], s[2]) < MIN]
        changes, prev = [], None
        for s in self.samples:
            if s[1:] != prev:
                changes.append(f"{s[0] - self.samples[0][0]:.3f}s {s[2]} {s[3]}")
                prev = s[1:]
        eq([(round(s[0] - self.samples[0][0], 3), s[1], s[2], s[3]) for s in low[:3]], [],
           f"{what}: samples below {MIN} healthy routed instances ({len(low)} of {len(self.samples)}); "
           f"timeline:\n" + "\n".join(changes))
        print(f"    {what}: {len(self.samples)} samples over {self.samples[-1][0] - self.samples[0][0]:.1f} s "
              f"(every {1000 * sum(gaps) / len(gaps):.1f} ms, at most {1000 * max(gaps):.0f} ms), healthy and routed "
              f"at least {min(min(s[1], s[2]) for s in self.samples)}, at most {max(s[2] for s in self.samples)}")


def start(c):
    """Releases 1.0.0 and 1.1.0, 1.0.0 deployed on its 4 instances."""
    app_release(c, "1.0.0")
    app_release(c, "1.1.0")
    eq(cli(c, "deploy", "shop", "1.0.0").returncode, 0, "deploy 1.0.0")
    wait_until(lambda: len([i for i in status(c)["managed"][0]["instances"]
                            if i["health"] == "healthy" and i["traffic_percent"] > 0]) == 4,
               timeout=10, what="4 healthy routed instances of 1.0.0")


def wait_batch(c, batch, timeout=20):
    def at():
        d = status(c)["managed"][0]["deploying"]
        return d if d and d["phase"] == "switched" and d["progress"]["step"] == batch else None
    return wait_until(at, timeout=timeout, interval=0.02, what=f"batch {batch} holding")


def settled_on(c, version):
    """All 4 instances of version healthy and routed, nothing else running."""
    inst = status(c)["managed"][0]["instances"]
    return len(inst) == 4 and all(i["version"] == version and i["health"] == "healthy" and i["traffic_percent"] == 25
                                  for i in inst)


def rolling(surge, act_at=None, act=None):
    """Deploy 1.1.0 over 1.0.0 (4 instances) under load, sampling the
    capacity; `act` (promote, abort) once batch `act_at` holds.  Returns the
    deployment's JSON and the load's results."""
    with cutover(yaml_text=rolling_yaml(surge)) as c:
        start(c)
        with Shoppers(c.port, [("GET", "/api/catalog"), ("POST", "/api/carts")], rate=300, clients=4) as load:
            with Capacity(c) as cap:
                time.sleep(0.1)
                p = deploy_in_background(c, "1.1.0")
                try:
                    if act:
                        wait_batch(c, act_at)
                        r = cli(c, act, "shop")
                        eq(r.returncode, 0, f"cutover {act} shop: {r.stdout}{r.stderr}")
                    rc, dep = deploy_result(p)
                finally:
                    if p.poll() is None:
                        p.kill()
                        p.wait()
                want = "1.0.0" if act == "abort" else "1.1.0"
                wait_until(lambda: settled_on(c, want), timeout=15, interval=0.05,
                           what=f"4 healthy instances of {want} and nothing else")
        what = f"max_surge {surge if surge is not None else 'default (25%)'}, " + (
            f"{act} at batch {act_at}" if act else "run to its end")
        cap.check(what)
        eq(load.failed()[:5], [], f"{what}: failed requests of {len(load.results())}")
        print(f"    {len(load.results())} requests, 0 failed; {dep['phase']} in "
              f"{(dep['events'][-1]['at_ms'] - dep['events'][0]['at_ms']) / 1000:.1f} s: "
              + (dep.get("reason") or "; ".join(e["detail"] for e in dep["events"] if e["phase"] == "stopping")))
        batches = [e["detail"] for e in dep["events"] if e["phase"] == "stopping"]
        history_row = history(c)[0]
        eq(c.shutdown_all(), 0, "daemon exit status")
        return rc, dep, batches, history_row


def test_rolling_run_to_its_end_never_below_three_of_four():
    """max_surge 0: four batches of one instance, each analysed for its
    hold, then the switch and the watch: done, and never fewer than 3."""
    rc, dep, batches, row = rolling(0)
    eq((rc, dep["phase"]), (0, "done"), f"the rolling update: {dep.get('reason')}")
    eq(batches, [f"batch {i} of 4: 1 instance of 1.0.0 stops, {3 - i + 1} left" for i in range(1, 5)],
       "one instance per batch")
    eq((row["strategy"], row["state"]), ("rolling", "done"), "the history row")


def test_rolling_promoted_never_below_three_of_four():
    """The default max_surge (25 %: one instance above 4) with
    max_unavailable 1, promoted at its first batch: the remaining batches
    run without their holds, and still never fewer than 3."""
    rc, dep, batches, row = rolling(None, act_at=1, act="promote")
    eq((rc, dep["phase"]), (0, "done"), f"the promoted rolling update: {dep.get('reason')}")
    check(any(e["phase"] == "promoted" and e["detail"].startswith(f"promoted by {ME}") for e in dep["events"]),
          f"the promotion in the events: {[e['phase'] for e in dep['events']]}")
    eq(batches[0], "batch 1 of 3: 1 instance of 1.0.0 stops, 3 left", "the first batch (5 instances at most)")


def test_rolling_aborted_halfway_never_below_three_of_four():
    """max_surge 0, `cutover abort` at batch 2 of 4 (2 instances of each
    version): 1.1.0 keeps its share until 3 instances of 1.0.0 are healthy
    again, then all traffic goes back to 1.0.0; never fewer than 3."""
    rc, dep, batches, row = rolling(0, act_at=2, act="abort")
    eq((rc, dep["phase"]), (1, "rolled-back"), f"the aborted rolling update: {dep.get('reason')}")
    eq(dep["reason"], f"aborted by {ME}; traffic back on 1.0.0 (3 instances)", "the reason")
    aborting = [e["detail"] for e in dep["events"] if e["phase"] == "aborting"]
    eq(aborting, [f"aborted by {ME}; 2 of 4 instances of 1.0.0 take requests: 1.1.0 keeps its share until 3 of "
                  f"them are healthy again"], "the abort waits for 1.0.0's instances")
    eq((row["to_version"], row["state"]), ("1.1.0", "rolled-back"), "the history row")
