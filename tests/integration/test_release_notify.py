"""test_release_notify.py - webhooks on a release's events (issue 12,
points 6 and the test "Notifications"): a local HTTP receiver gets a
release's notifications in order (started, each step, then succeeded, or
rolling-back and rolled-back), and a receiver that is down does not slow a
release.  The receiver and the webhook configuration are test_notify.py's.
"""
import time

from harness import *
from releasenv import *
from test_notify import Receiver, webhooks_yaml

SERVICES = ["auth", "payment", "inventory"]


def notifications(rx):
    """(notification, phase, step) of every release event received, in order."""
    out = []
    for b in rx.bodies():
        ev = b["event"]
        if b["kind"] == "release":
            out.append((b["notification"], ev["phase"], ev.get("step")))
    return out


def test_a_release_notifies_in_order_and_a_dead_receiver_does_not_slow_it():
    with Receiver() as rx:
        hooks = webhooks_yaml({"url": rx.url(), "format": "json", "name": "ops"})
        with cutover(yaml_text=shop_yaml(SERVICES, extra=hooks)) as c:
            shop = Shop(c, SERVICES)
            shop.install("1.0.0")
            shop.add_all("1.1.0")
            shop.add("payment", "1.2.0", exit_after=0)  # dies at once: its deploy fails
            # (install ran a release too: its notifications first, then a clean slate)
            wait_until(lambda: any(n[1] == "succeeded" for n in notifications(rx)), timeout=10,
                       what="the install's succeeded notification")
            with rx.lock:
                rx.posts.clear()

            # a good release: started, a step per service, succeeded - in that order
            shop.run_ok(shop.versions_file("good", "1.1.0"))
            wait_until(lambda: any(n[1] == "succeeded" for n in notifications(rx)), timeout=10,
                       what="the release's succeeded notification")
            got = [n for n in notifications(rx) if n[1] != "step" or n[2]]
            phases = [n[1] for n in got]
            eq(phases[0], "started", f"the first notification: {got}")
            eq(phases[-1], "succeeded", f"the last notification: {got}")
            done = [n[2] for n in got if n[1] == "step" and n[2] in SERVICES]
            check(done.index("auth") < min(done.index("payment"), done.index("inventory")),
                  f"auth's step is notified before its dependents': {done}")
            check(all(n[0] == "step" for n in got if n[1] == "step"), f"steps are `step` notifications: {got}")
            eq(len([b for b in rx.bodies() if b["kind"] != "release"]), 0,
               "deploys of a release are told by the release's events, not one by one")

            # a failing release: rolling-back then rolled-back, after the failure's step
            with rx.lock:
                rx.posts.clear()
            path = shop.release_file("bad", "name: bad\nservices:\n  auth: 1.0.0\n  payment: 1.2.0\n")
            rc, run = shop.run(path)
            eq((rc, run["state"]), (1, "rolled-back"), f"the bad release: {run['report']['reason']}")
            wait_until(lambda: any(n[1] == "rolled-back" for n in notifications(rx)), timeout=10,
                       what="the rolled-back notification")
            phases = [n[1] for n in notifications(rx)]
            check(phases.index("started") < phases.index("rolling-back") < phases.index("rolled-back"),
                  f"the order: {phases}")
            eq(notifications(rx)[-1][0], "rolled-back", "the last notification's kind")

    # the same release with the receiver down (a closed port): no slower than without a webhook
    def timed(extra):
        with cutover(yaml_text=shop_yaml(SERVICES, extra=extra)) as c:
            shop = Shop(c, SERVICES)
            shop.install("1.0.0")
            shop.add_all("1.1.0")
            t0 = time.time()
            shop.run_ok(shop.versions_file("timed", "1.1.0"))
            return time.time() - t0

    dead = free_port()  # nothing listens there
    without = timed("")
    with_dead = timed(webhooks_yaml({"url": f"http://127.0.0.1:{dead}/hook", "name": "down", "retries": 5}))
    print(f"    the release: {without:.2f} s without a webhook, {with_dead:.2f} s with a receiver that is down")
    check(with_dead < without + 3.0, f"a dead receiver slowed the release: {with_dead:.2f} s against {without:.2f} s")
