#!/usr/bin/env bash
# make-samples.sh - regenerate the sample outputs next to this script, which
# tests/unit/test_gate.c reads: real outputs of real tools, kept small.
# Made on Debian 12 with cmocka 1.1.5, pytest 7.2.1, gcc 12.2, gcovr 5.2 and
# lcov 1.16 (scripts/bootstrap installs them):
#
#   cmocka.xml          CMOCKA_MESSAGE_OUTPUT=xml of a cmocka group: 1 passed, 1 failed, 1 skipped
#   pytest.xml          pytest --junitxml: 1 passed, 1 failed, 1 skipped, 1 error
#   pytest.txt          that run's terminal output (its last line is the summary)
#   pytest-color.txt    the same with --color=yes (ANSI sequences around each count)
#   tiny.gcovr.json     gcovr --json-summary of tiny.c run once: lines 7/13, branches 2/6, functions 2/3
#   tiny-capture.info   lcov --capture of the same run (geninfo writes no LF/LH, BRF/BRH, FNF/FNH here)
#   tiny.info           lcov -a of the capture (the same data, with the totals)
#
#   bash tests/unit/gate/make-samples.sh
#
# The unit test checks the figures above; the same tools also run live in
# test_gate.c, so a new version of one of them is caught either way.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

cat >demo.c <<'C'
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
static void ok(void **s) { (void)s; assert_int_equal(1, 1); }
static void bad(void **s) { (void)s; assert_int_equal(1, 2); }
static void later(void **s) { (void)s; skip(); }
int main(void)
{
	const struct CMUnitTest t[] = { cmocka_unit_test(ok), cmocka_unit_test(bad), cmocka_unit_test(later) };
	return cmocka_run_group_tests_name("demo", t, NULL, NULL);
}
C
gcc -o demo demo.c -lcmocka
CMOCKA_MESSAGE_OUTPUT=xml CMOCKA_XML_FILE=cmocka.xml ./demo >/dev/null 2>&1 || true
cp cmocka.xml "$here/"

cat >test_tiny.py <<'PY'
import pytest
def test_ok(): assert 1 == 1
def test_bad(): assert 1 == 2
@pytest.mark.skip(reason="not today")
def test_later(): pass
@pytest.fixture
def broken(): raise RuntimeError("broken fixture")
def test_error(broken): pass
PY
pytest=$(command -v pytest-3 || echo "python3 -m pytest")
$pytest -p no:cacheprovider --junitxml=pytest.xml test_tiny.py >pytest.txt 2>&1 || true
$pytest -p no:cacheprovider --color=yes test_tiny.py >pytest-color.txt 2>&1 || true
sed -i 's/timestamp="[^"]*" hostname="[^"]*"/timestamp="2025-01-01T00:00:00" hostname="host"/' pytest.xml
sed -i "s|$work|/tmp/work|g" pytest.xml pytest.txt pytest-color.txt
cp pytest.xml pytest.txt pytest-color.txt "$here/"

cat >tiny.c <<'C'
#include <stdio.h>
static int sign(int x)
{
	if (x > 0)
		return 1;
	if (x < 0)
		return -1;
	return 0;
}
static int twice(int x)
{
	return x * 2;
}
int main(int argc, char **argv)
{
	(void)argv;
	printf("%d\n", sign(argc));
	if (argc > 5)
		printf("%d\n", twice(argc));
	return 0;
}
C
gcc --coverage -O0 -o tiny tiny.c
./tiny >/dev/null
gcovr -r . --json-summary tiny.gcovr.json
lcov -q --rc lcov_branch_coverage=1 --capture --directory . --output-file tiny-capture.info 2>/dev/null
lcov -q --rc lcov_branch_coverage=1 -a tiny-capture.info --output-file tiny.info 2>/dev/null
sed -i "s|^SF:$work/|SF:|" tiny-capture.info tiny.info
cp tiny.gcovr.json tiny-capture.info tiny.info "$here/"
