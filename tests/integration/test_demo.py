"""`cutover demo`, as the README's first command runs it: the shop shipped
three times under load.  Its summary is the issue's acceptance figure:
no failed request, the faulty release rolled back by the daemon itself,
switch and rollback well under 10 ms at the proxy, nothing left behind."""
import glob
import json
import os
import subprocess

from harness import *


def test_demo_json_summary():
    before = set(glob.glob("/tmp/cutover-demo-*"))
    r = subprocess.run([BIN, "demo", "--json"], capture_output=True, text=True, timeout=180)
    eq(r.returncode, 0, f"cutover demo exit status; stderr:\n{r.stderr[-2000:]}")
    s = json.loads(r.stdout)
    for k in ("requests", "failed", "deploys", "rollbacks", "switch_ms", "rollback_ms"):
        check(k in s, f"summary lacks {k}: {s}")
    eq(s["failed"], 0, "failed requests")
    eq(s["deploys"], 3, "deploys")
    eq(s["rollbacks"], 1, "rollbacks")
    check(s["rolled_back_automatically"], "the faulty release was not rolled back by the daemon")
    check(s["requests"] > 100, f"too little load to mean anything: {s['requests']}")
    check(0 <= s["switch_ms"] < 10, f"switch_ms {s['switch_ms']}")
    check(0 <= s["rollback_ms"] < 10, f"rollback_ms {s['rollback_ms']}")
    eq(sorted(set(glob.glob("/tmp/cutover-demo-*")) - before), [], "work dir left behind")
    eq(subprocess.run(["pgrep", "-f", s["work_dir"]], capture_output=True).stdout, b"",
       "processes of the demo still running")
