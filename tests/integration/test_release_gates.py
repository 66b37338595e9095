"""test_release_gates.py - quality gates of a release reading real test
output through the daemon's runner (issue 12, point 3; the readers are
src/release/gate*.c, docs/internals/gates.md).

The outputs are real: this project's own cmocka unit tests writing JUnit
XML, this project's own integration runner printing its "N passed, N
failed" line, pytest's JUnit XML, and gcovr's JSON summary of a program
built with gcc --coverage.  A gate that passes lets the release deploy; one
that fails, or whose output cannot be read, rolls it back before anything
changes, and the report carries the figures read.
"""
import os
import shutil

from harness import *
from releasenv import *

UNIT = os.path.join(os.path.dirname(BIN), "tests", "unit", "test_base")
RUN_PY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "run.py")

COVERED = r"""
#include <stdio.h>
static int twice(int x) { return 2 * x; }
static int never(int x) { return x - 1; }
int main(int argc, char **argv)
{
	(void)argv;
	printf("%d\n", twice(argc));
	if (argc > 5)
		printf("%d\n", never(argc));
	return 0;
}
"""


def pytest_command():
    for p in ("/usr/bin/pytest-3", shutil.which("pytest-3") or "", shutil.which("pytest") or ""):
        if p and os.access(p, os.X_OK):
            return p
    raise TestFailure("pytest is not installed (scripts/bootstrap installs python3-pytest)")


def gates_release(shop, name, gates):
    return shop.release_file(name, f"name: {name}\nservices:\n  auth: 1.1.0\ngates:\n{gates}")


def test_gates_read_the_projects_own_test_output():
    check(os.access(UNIT, os.X_OK), f"the unit test program {UNIT} (built with the daemon)")
    with cutover(yaml_text=shop_yaml(["auth"])) as c:
        shop = Shop(c, ["auth"])
        shop.install("1.0.0")
        shop.add("auth", "1.1.0")
        path = gates_release(shop, "own-output", f"""  unit-junit:
    run: CMOCKA_MESSAGE_OUTPUT=xml CMOCKA_XML_FILE=unit.xml {UNIT}
    read: junit
    file: unit.xml
  layers:
    run: CUTOVER_BIN={BIN} python3 {RUN_PY} test_layers.py
    read: summary
    min_tests: 2
""")
        report = shop.run_ok(path)
        gates = {g["name"]: g for g in report["gates"]}
        eq(sorted(gates), ["layers", "unit-junit"], "the gates that ran")
        check(all(g["passed"] for g in gates.values()), f"the gates: {gates}")
        tests = gates["unit-junit"]["tests"]
        check(tests["tests"] > 5 and tests["failed"] == 0 and tests["errors"] == 0,
              f"test_base's own JUnit counts: {tests}")
        check(gates["layers"]["tests"]["failed"] == 0 and gates["layers"]["tests"]["passed"] >= 2,
              f"run.py's own summary: {gates['layers']}")
        check(" passed, 0 failed" in gates["layers"]["reason"], gates["layers"]["reason"])
        eq(shop.live()["auth"], "1.1.0", "auth deployed after the gates passed")


def test_failing_and_unreadable_gates_roll_back_before_anything_changes():
    pytest = pytest_command()
    with cutover(yaml_text=shop_yaml(["auth"])) as c:
        shop = Shop(c, ["auth"])
        shop.install("1.0.0")
        shop.add("auth", "1.1.0")
        with open(os.path.join(shop.files, "test_cart.py"), "w") as f:
            f.write("def test_total():\n    assert 2 + 2 == 4\n\n"
                    "def test_discount():\n    assert round(100 * 0.9) == 91\n\n"
                    "def test_empty():\n    assert [] == []\n")
        cases = [
            # pytest's JUnit XML with one failure: read, and below the pass rate
            ("pytest", f"""  pytest:
    run: {pytest} -q -p no:cacheprovider --junitxml=pytest.xml test_cart.py
    read: junit
    file: pytest.xml
""", ["1 failed", "3 tests"]),
            # output without the line: the gate fails, saying so; nothing is assumed
            ("silent", """  silent:
    run: echo all good
    read: summary
""", ["no \"N passed, N failed\" line"]),
            # a report file that is not there
            ("missing", """  missing:
    run: "true"
    read: junit
    file: never-written.xml
""", ["never-written.xml"]),
        ]
        for name, gates, words in cases:
            before = shop.snapshot()
            rc, run = shop.run(gates_release(shop, name, gates))
            report = run["report"]
            eq((rc, run["state"]), (1, "rolled-back"), f"{name}: the release")
            gate = report["gates"][0]
            eq(gate["passed"], False, f"{name}: the gate")
            for w in words:
                check(w in gate["reason"], f"{name}: '{w}' not in the gate's reason: {gate['reason']}")
            check(report["reason"].startswith(f"gate {name} failed: "), f"{name}: {report['reason']}")
            after = shop.snapshot()
            eq((after["live"], after["deployments"]), (before["live"], before["deployments"]),
               f"{name}: nothing changed")


def test_coverage_gate_on_a_gcovr_run():
    gcovr = shutil.which("gcovr") or "/usr/bin/gcovr"
    check(os.access(gcovr, os.X_OK), "gcovr is not installed (scripts/bootstrap installs it)")
    with cutover(yaml_text=shop_yaml(["auth"])) as c:
        shop = Shop(c, ["auth"])
        shop.install("1.0.0")
        shop.add("auth", "1.1.0")
        with open(os.path.join(shop.files, "covered.c"), "w") as f:
            f.write(COVERED)
        build = ("rm -f *.gcda && gcc --coverage -O0 -o covered covered.c && ./covered && "
                 f"{gcovr} --json-summary cov.json -r . .")
        # half the program's functions run; its lines: 5 of 7 or so - read, not guessed
        path = gates_release(shop, "covered", f"""  lines:
    run: {build}
    read: coverage
    file: cov.json
    min_coverage: 50%
""")
        report = shop.run_ok(path)
        gate = report["gates"][0]
        cov = gate["coverage"]
        check(0 < cov["covered"] < cov["total"], f"the lines covered, read from gcovr: {cov}")
        check(gate["passed"] and "line coverage" in gate["reason"], gate["reason"])

        # the same run against a threshold it does not reach: rolled back, the figure in the reason
        shop.add("auth", "1.2.0")
        path = shop.release_file("covered-high", f"""name: covered-high
services:
  auth: 1.2.0
gates:
  functions:
    run: {build}
    read: coverage
    file: cov.json
    coverage: functions
    min_coverage: 90%
""")
        rc, run = shop.run(path)
        gate = run["report"]["gates"][0]
        eq((rc, run["state"], gate["passed"]), (1, "rolled-back", False), f"the release: {gate['reason']}")
        check("function coverage" in gate["reason"] and "< 90.00%" in gate["reason"], gate["reason"])
        eq(shop.live()["auth"], "1.1.0", "auth stays on 1.1.0")
