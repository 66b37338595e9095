"""run.py - run the integration tests: every test_* function of every
test_*.py file here (or the files/functions named on the command line:
`run.py test_proxy.py::test_keepalive`).  Prints one line per test and,
last, `N passed, N failed`.  Exit status 0 only if nothing failed.

`-j N` (or $CUTOVER_TEST_JOBS) runs up to N test files at once, each in a
process of its own (the tests wait on daemons and deploys far more than
they compute); each file's lines are printed together when it ends.  The
longest files (by their last recorded duration, else their size) start
first.  Every test takes its ports from the kernel and its files from its
own temporary directory, so files do not meet."""
import importlib.util, json, os, subprocess, sys, tempfile, time, traceback

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
TIMES = os.path.join(os.environ.get("TMPDIR", "/tmp"), "cutover-integration-times.json")


def run_files(files, wanted):
    passed = failed = 0
    for f in files:
        sel = [w.split("::")[1] for w in wanted if w.split("::")[0] == f and "::" in w]
        if wanted and f not in wanted and not sel:
            continue
        spec = importlib.util.spec_from_file_location(f[:-3], os.path.join(here, f))
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        for name in [n for n in dir(mod) if n.startswith("test_") and callable(getattr(mod, n))]:
            if sel and name not in sel:
                continue
            t0 = time.time()
            try:
                getattr(mod, name)()
                passed += 1
                print(f"ok     {f}::{name} ({time.time() - t0:.1f}s)", flush=True)
            except Exception as e:
                failed += 1
                print(f"FAIL   {f}::{name} ({time.time() - t0:.1f}s): {e}", flush=True)
                traceback.print_exc(limit=4)
    return passed, failed


def run_parallel(files, wanted, jobs):
    """Each file in its own `run.py FILE...` process, `jobs` at once."""
    try:
        with open(TIMES) as fp:
            last = json.load(fp)
    except (OSError, ValueError):
        last = {}
    args = {}
    for f in files:
        mine = [w for w in wanted if w.split("::")[0] == f]
        if wanted and not mine:
            continue
        args[f] = mine or [f]
    order = sorted(args, key=lambda f: -last.get(f, os.path.getsize(os.path.join(here, f)) / 1000.0))
    running, passed, failed, took = {}, 0, 0, {}
    while order or running:
        while order and len(running) < jobs:
            f = order.pop(0)
            out = tempfile.TemporaryFile(mode="w+")  # a pipe could fill up and stop the child
            p = subprocess.Popen([sys.executable, os.path.abspath(__file__)] + args[f],
                                 stdout=out, stderr=subprocess.STDOUT, text=True)
            running[p] = (f, time.time(), out)
        done = None
        while done is None:
            for p in running:
                if p.poll() is not None:
                    done = p
                    break
            else:
                time.sleep(0.05)
        f, t0, fp = running.pop(done)
        fp.seek(0)
        out = fp.read()
        fp.close()
        took[f] = time.time() - t0
        lines = out.rstrip("\n").split("\n")
        tail = lines[-1] if lines else ""
        body = lines[:-1] if tail.endswith(" failed") else lines
        if body:
            print("\n".join(body), flush=True)
        try:
            p_, f_ = (int(x.split()[0]) for x in tail.split(", "))
        except ValueError:
            print(f"FAIL   {f}: the file's run printed no summary (exit status {done.returncode})", flush=True)
            p_, f_ = 0, 1
        if done.returncode and not f_:
            f_ = 1
        passed += p_
        failed += f_
    last.update(took)
    try:
        with open(TIMES, "w") as fp:
            json.dump(last, fp)
    except OSError:
        pass
    return passed, failed


def main(argv):
    args = argv[1:]
    jobs = int(os.environ.get("CUTOVER_TEST_JOBS", "1") or 1)
    if args[:1] == ["-j"] and len(args) > 1:
        jobs, args = int(args[1]), args[2:]
    files = sorted(f for f in os.listdir(here) if f.startswith("test_") and f.endswith(".py"))
    if jobs > 1:
        passed, failed = run_parallel(files, args, jobs)
    else:
        passed, failed = run_files(files, args)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
