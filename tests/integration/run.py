#!/usr/bin/env python3
"""run.py - run the integration tests: every test_* function of every
test_*.py file here (or the files/functions named on the command line:
`run.py test_proxy.py::test_keepalive`).  Prints one line per test and,
last, `N passed, N failed`.  Exit status 0 only if nothing failed."""
import importlib.util, os, sys, time, traceback

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)


def main(argv):
    wanted = argv[1:]
    files = sorted(f for f in os.listdir(here) if f.startswith("test_") and f.endswith(".py"))
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
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
