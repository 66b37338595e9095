# Makefile - a thin wrapper: the real commands live in scripts/ and bench/
# (see README.md), so that CI, the README and `make` run the same thing.

.PHONY: all build test demo bench bench-deploy bench-restart bench-canary bench-redact asan clean

all: build

# Configure build/ once (debugoptimized); ninja reconfigures by itself when
# a meson.build changes.
build:
	@test -f build/build.ninja || meson setup build --buildtype=debugoptimized
	ninja -C build

# Everything: bootstrap, build, unit + integration tests, the same under
# ASan+UBSan, the fuzzer.  Last line: N passed, N failed.
test:
	bash scripts/test

demo:
	bash scripts/demo

bench:
	bash bench/run

# Deploy speed: switch, rollback (seen by clients) and deploy time beyond the
# app's start-up, with a real daemon and the shop (~1 min).  Not part of `bench`.
bench-deploy:
	bash bench/deploy

# Restarts and upgrades of the daemon under load: failed requests by kind and
# the longest wait, per mode (socket activation, cutover upgrade, plain; ~2 min).
bench-restart:
	bash bench/restart

# Canary analysis: how fast a bad canary is aborted (error rate, latency), the
# failures shoppers see meanwhile, and false aborts of good canaries (~12 min).
bench-canary:
	bash bench/canary

# Redaction engine throughput on access-log lines, 0 to 50 values (~10 s).
bench-redact:
	bash bench/redact

# Build into build-asan/ with ASan+UBSan and run the unit and integration
# tests against it.
asan:
	CUTOVER_SKIP_BOOTSTRAP=1 bash scripts/test asan

clean:
	rm -rf build build-asan build-fuzz build-release
