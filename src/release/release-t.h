/* release-t.h - types of a release: what a release file asks
 * (docs/internals/releases.md), the plan made of it, and the quality
 * gates with what their runs gave.
 *
 * A release file names services at versions (optionally with their
 * digests), command steps with their run and undo commands, and quality
 * gates.  release_file_load() reads it whole, release_plan_make() checks it
 * against the configuration and the release store and orders it in groups;
 * the daemon's runner (release.h) then runs the plan.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RELEASE_NAME_MAX 64           /* [A-Za-z0-9][A-Za-z0-9._-]* */
#define RELEASE_ITEMS_MAX 128         /* services and command steps together */
#define RELEASE_GATES_MAX 32
#define RELEASE_DEPS_MAX 32           /* dependencies of one item */

/* A service or a command step of the release: a node of the graph. */
enum release_item_kind { RELEASE_SERVICE = 0, RELEASE_COMMAND };

struct release_item {
	enum release_item_kind kind;
	char *name;                   /* a service of cutover.yml, or the step's name */
	int line;                     /* where the release file names it */
	/* services */
	char *version;                /* valid semver */
	char *digest;                 /* 64 hex digits (written "sha256:HEX" or HEX); NULL: the store's */
	/* command steps */
	char *run;                    /* shell command, run in the release file's directory */
	char *undo;                   /* NULL: nothing to undo (a rollback says so) */
	bool point_of_no_return;      /* once it ran, the steps before it are not undone */
	uint64_t timeout_ms;          /* for run and undo each; 0 in the file: release.gate_timeout (10 min) */
	/* both */
	bool critical;                /* default true; false: its failure is reported, not rolled back */
	char **depends_on;            /* names of items, or of configured services not in the release */
	size_t ndeps;
};

/* How a gate's result is read. */
enum release_gate_read {
	GATE_READ_EXIT = 0,           /* the exit status (0, or expect_exit) */
	GATE_READ_SUMMARY,            /* the last "N passed, N failed" line of its output */
	GATE_READ_JUNIT,              /* a JUnit XML file (file:) */
	GATE_READ_COVERAGE,           /* a gcovr JSON summary or an lcov .info file (file:) */
	GATE_READ_METRIC,             /* the daemon's own counters (no command) */
};

/* When a gate runs. */
enum release_gate_when {
	GATE_BEFORE = 0,              /* before anything changes (default) */
	GATE_BETWEEN,                 /* after every group but the last */
	GATE_AFTER_GROUP,             /* after the group holding the item `after` */
	GATE_AFTER,                   /* after the last group */
};

enum release_coverage_kind { COVERAGE_LINES = 0, COVERAGE_BRANCHES, COVERAGE_FUNCTIONS };

enum release_metric {
	METRIC_ERROR_RATE = 0,        /* 5xx and upstream failures / requests */
	METRIC_P50,
	METRIC_P99,
};

struct release_gate {
	char *name;
	int line;
	enum release_gate_read read;
	enum release_gate_when when;
	char *after;                  /* GATE_AFTER_GROUP: an item's name */
	char *run;                    /* shell command (not for metric gates) */
	char *file;                   /* junit / coverage: its path, relative to the release file's directory */
	uint64_t timeout_ms;          /* 0 in the file: release.gate_timeout of cutover.yml (10 min) */
	/* thresholds; what a read does not produce is refused by the loader */
	int expect_exit;              /* exit: the status that passes (default 0) */
	uint64_t min_tests;           /* summary, junit: at least this many tests ran (default 1) */
	uint64_t max_failed;          /* summary, junit: failed + errors at most (default 0) */
	uint32_t min_pass_rate_bp;    /* junit, summary: passed / (tests - skipped), basis points (default 10000) */
	enum release_coverage_kind coverage; /* coverage: lines (default), branches, functions */
	uint32_t min_coverage_bp;     /* coverage: required, basis points */
	/* metric gates */
	char *service;
	char *version;                /* NULL: the service as a whole */
	enum release_metric metric;
	bool during_canary;           /* the version's figures from its last canary (its deployment's analysis) */
	uint64_t window_ms;           /* not during_canary: counted over this window from the gate's start (default 60 s) */
	uint64_t max_value;           /* error_rate: basis points; p50/p99: milliseconds */
	uint64_t min_requests;        /* fewer requests than this: the gate fails, "too few requests" (default 20) */
};

/* A release file, read whole. */
struct release_file {
	char *path;                   /* absolute */
	char *dir;                    /* its directory: commands and files are relative to it */
	char *name;                   /* name:, default the file name without .yml / .yaml */
	uint32_t concurrency;         /* services deployed at once in a group; 0: release.concurrency */
	struct release_item *items;
	size_t nitems;
	struct release_gate *gates;
	size_t ngates;
};

/* The plan: the items in groups, each holding items whose dependencies are
 * all in earlier groups; in a group, items in file order. */
struct release_plan {
	struct release_file *file;    /* owned */
	size_t *order;                /* nitems indexes into file->items, group by group */
	size_t *group_start;          /* ngroups + 1 offsets into order */
	size_t ngroups;
	char (*digests)[65];          /* per item: the digest the store holds (services), "" for commands */
	char (*from_versions)[64];    /* per item: the version live now (services; "" none or unknown) */
	char (*strategies)[16];       /* per item: the service's deploy strategy ("" for commands) */
	uint32_t concurrency;         /* resolved */
};

/* What one run of a gate gave (gate.c reads it, the runner fills the run
 * part).  Every figure is read from real output; has_* says which were. */
struct gate_result {
	bool passed;
	char reason[512];             /* a sentence: the figures against the threshold, or why the
				       * output could not be read ("no \"N passed, N failed\" line in ...") */
	/* the command */
	bool ran;                     /* a process ran (false: could not start, or a metric gate) */
	int exit_code;                /* -1 when killed */
	int signal;                   /* 0: exited */
	bool timed_out;
	int64_t started_ms, finished_ms; /* wall clock (Unix ms) */
	/* tests (summary, junit) */
	bool has_tests;
	uint64_t tests, passed_tests, failed, errors, skipped;
	/* coverage */
	bool has_coverage;
	uint64_t covered, total;      /* lines, branches or functions */
	double coverage_percent;
	/* metric */
	bool has_metric;
	uint64_t requests, errors_5xx;
	double value;                 /* error rate in percent, or milliseconds */
};
