"""test_deploy_metrics.py - the deploy engine's families of /metrics
(docs/metrics.md, Deploys and Instances) against what really happened:
the real daemon, the small releases of faulty.py, real load.

* A canary the analysis aborts counts `rolled-back` and an `automatic`
  rollback; one aborted by `cutover abort` a `manual` one; every deploy
  that ran is in the duration histogram.  While a canary holds its step,
  cutover_deploy_phase_seconds{phase="switched"} grows, starts again at a
  resume, and is gone once the deploy ends.
* Deploys that awaited approval count `rejected` and `expired`, and are
  not in the duration histogram (they never ran).
* A deploy cut short by a kill -9 of the daemon counts `aborted` in the
  daemon that finds it unfinished.

test_prometheus.py covers `done`, a rollback by `cutover rollback`, and a
restart after a crash, through Prometheus.
"""
import os
import time

from harness import *
from shopenv import cli, managed, restart_daemon
from faulty import app_release, deploy_in_background, deploy_result, service_yaml, Shoppers

MIX = [("GET", "/api/catalog"), ("GET", "/api/catalog/3"), ("GET", "/"), ("POST", "/api/carts")]


def counts(c):
    """{(family, label value): value} of the shop's deploy counters."""
    out = {}
    for r in ("done", "rolled-back", "failed", "aborted", "rejected", "expired"):
        out[("deploys", r)] = c.metric("cutover_deploys_total", service="shop", result=r)
    for t in ("automatic", "manual"):
        out[("rollbacks", t)] = c.metric("cutover_rollbacks_total", service="shop", trigger=t)
    out[("durations", "count")] = c.metric("cutover_deploy_duration_seconds_count", service="shop")
    return out


def expect(c, what, **changed):
    """The counters are zero but for changed (family_label=value, '-' for '_')."""
    want = {k: 0.0 for k in counts(c)}
    for k, v in changed.items():
        fam, _, label = k.partition("_")
        want[(fam, label.replace("_", "-"))] = float(v)
    eq(counts(c), want, what)


def phase_seconds(c):
    """{phase: seconds} of the shop's deploy in flight (empty: none)."""
    return {labels["phase"]: v for name, labels, v in metric_samples(c.metrics())
            if name == "cutover_deploy_phase_seconds" and labels.get("service") == "shop"}


def wait_step(c, step, timeout=20):
    def at_step():
        d = managed(c)["deploying"]
        return d if d and d["phase"] == "switched" and d["progress"]["step"] == step else None
    return wait_until(at_step, timeout=timeout, interval=0.02, what=f"the deploy at step {step}")


def test_rollbacks_automatic_and_manual_and_the_phase_clock():
    yaml = service_yaml("strategy: canary\nsteps: 50% 20s, 100%\nwatch: 0s\nmin_requests: 20")
    with cutover(yaml_text=yaml) as c:
        app_release(c, "1.0.0")
        app_release(c, "1.1.0")
        app_release(c, "2.0.0", fail_every=3)
        eq(cli(c, "deploy", "shop", "1.0.0").returncode, 0, "deploy 1.0.0")
        expect(c, "after the first deploy", deploys_done=1, durations_count=1)
        eq(phase_seconds(c), {}, "no deploy in flight: no phase series")
        with Shoppers(c.port, MIX, rate=150, clients=6):
            time.sleep(0.5)
            rc, dep = deploy_result(deploy_in_background(c, "2.0.0"))
            eq((rc, dep["phase"]), (1, "rolled-back"), f"2.0.0 aborted by the analysis: {dep.get('reason')}")
            expect(c, "after the analysis rolled 2.0.0 back", deploys_done=1, deploys_rolled_back=1,
                   rollbacks_automatic=1, durations_count=2)

            p = deploy_in_background(c, "1.1.0")
            try:
                wait_step(c, 1)
                first = phase_seconds(c)
                eq(list(first), ["switched"], "the phase of a canary holding its step")
                time.sleep(1.0)
                later = phase_seconds(c)["switched"]
                check(later >= first["switched"] + 0.9, f"the clock runs: {first} then {later}")
                eq(cli(c, "pause", "shop").returncode, 0, "pause")
                eq(c.metric("cutover_deploy_paused", service="shop"), 1, "paused")
                time.sleep(0.5)
                eq(cli(c, "resume", "shop").returncode, 0, "resume")
                resumed = phase_seconds(c)["switched"]
                check(resumed < 0.5 < later, f"the clock starts again at a resume: {later} then {resumed}")
                eq(cli(c, "abort", "shop").returncode, 0, "abort")
                rc, dep = deploy_result(p)
            finally:
                if p.poll() is None:
                    p.kill()
                    p.wait()
            eq((rc, dep["phase"]), (1, "rolled-back"), f"1.1.0 aborted by hand: {dep.get('reason')}")
        expect(c, "after cutover abort", deploys_done=1, deploys_rolled_back=2, rollbacks_automatic=1,
               rollbacks_manual=1, durations_count=3)
        eq(phase_seconds(c), {}, "the deploy ended: no phase series")
        check(0 < c.metric("cutover_deploy_duration_seconds_sum", service="shop") < 120, "the durations' sum")
        eq(c.metric("cutover_deploy_duration_seconds_bucket", service="shop", le="+Inf"), 3, "+Inf bucket")
        print(f"    durations: {c.metric('cutover_deploy_duration_seconds_sum', service='shop'):.1f} s for 3 "
              f"deploys; the phase clock read {first['switched']:.2f} s, {later:.2f} s, {resumed:.2f} s after "
              f"the resume")
        eq(c.shutdown_all(), 0, "daemon exit status")


def test_rejected_and_expired_are_counted_not_timed():
    yaml = "approval:\n  required: true\n  timeout: 2s\n" + service_yaml("watch: 0s")
    with cutover(yaml_text=yaml) as c:
        app_release(c, "1.0.0")
        eq(cli(c, "deploy", "shop", "1.0.0").returncode, 4, "deploy 1 awaits approval")
        eq(cli(c, "reject", "1", "--reason", "not today").returncode, 0, "reject 1")
        expect(c, "after the rejection", deploys_rejected=1)
        eq(cli(c, "deploy", "shop", "1.0.0").returncode, 4, "deploy 2 awaits approval")
        wait_until(lambda: c.metric("cutover_deploys_total", service="shop", result="expired") == 1, timeout=10,
                   interval=0.1, what="deploy 2 expired")
        expect(c, "after the expiry", deploys_rejected=1, deploys_expired=1)
        eq(c.shutdown_all(), 0, "daemon exit status")


def test_a_deploy_cut_short_by_kill9_counts_aborted_in_the_next_daemon():
    yaml = service_yaml("strategy: canary\nsteps: 50% 60s, 100%\nwatch: 0s\nmin_requests: 20")
    with cutover(yaml_text=yaml) as c:
        app_release(c, "1.0.0")
        app_release(c, "1.1.0")
        eq(cli(c, "deploy", "shop", "1.0.0").returncode, 0, "deploy 1.0.0")
        p = deploy_in_background(c, "1.1.0")
        try:
            wait_step(c, 1)
            time.sleep(0.3)  # the step recorded
            os.kill(c.pid, 9)
            c.proc.wait(10)
            p.wait(10)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        restart_daemon(c)
        wait_until(lambda: managed(c)["live"] and not managed(c)["deploying"], timeout=10, what="recovered")
        expect(c, "in the daemon that recovered", deploys_aborted=1)
        eq(c.shutdown_all(), 0, "daemon exit status")
