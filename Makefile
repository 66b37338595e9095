# Makefile - a thin wrapper: the real commands live in scripts/ and bench/
# (see README.md), so that CI, the README and `make` run the same thing.

.PHONY: all build test demo bench asan clean

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

# Build into build-asan/ with ASan+UBSan and run the unit and integration
# tests against it.
asan:
	CUTOVER_SKIP_BOOTSTRAP=1 bash scripts/test asan

clean:
	rm -rf build build-asan build-fuzz build-release
