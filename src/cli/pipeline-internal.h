/* pipeline-internal.h - what the two files of `cutover pipeline` share:
 * pipeline.c (the verb: options, which stages, list, dry run, the summary)
 * and pipeline-run.c (the stages' processes: their argv and environment,
 * their output streamed, timeouts and signals).
 */
#pragma once
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "cli/cli.h"
#include "config/config-t.h"

#define EXIT_STAGE_BASE 10            /* exit code of a failed stage N: 10 + N */
#define ARGV_MAX 24                   /* of a stage's command */

enum stage_status {
	STATUS_NOT_RUN = 0,           /* not selected (--from, --only), or after an interruption */
	STATUS_OK,
	STATUS_FAILED,
	STATUS_TIMED_OUT,
	STATUS_INTERRUPTED,
	STATUS_AWAITING,              /* a deploy, promote or release awaits approval */
	STATUS_SKIPPED,               /* after a failure (when: success) */
	STATUS_NCODES,
};

extern const char *const pipeline_status_words[STATUS_NCODES];
extern const char *const pipeline_kind_words[4]; /* enum config_stage_kind */

struct stage_result {
	bool selected;
	enum stage_status status;
	int exit_code;                /* the process's, or -1 */
	int signo;                    /* the signal that ended it, or 0 */
	uint64_t duration_ms;
};

struct pipeline_options {
	const char *from, *only;      /* --from STAGE, --only STAGE */
	bool dry_run;
};

/* One `pipeline run` or `pipeline list`. */
struct run {
	const struct cli *c;
	const struct pipeline_options *o;
	struct config *cfg;
	char *config_path;            /* absolute */
	char *dir;                    /* its directory: where the stages run */
	char self[PATH_MAX];          /* this binary */
	FILE *out;                    /* the stages' output and progress: stdout, stderr with --json */
	int width;                    /* of the longest stage name */
	struct stage_result *results; /* one per stage */
	sigset_t wait_mask;           /* the mask while waiting: SIGINT, SIGTERM, SIGCHLD open */
};

/* ms as "2.3s", "4m05s", "1h02m" into buf; returns buf. */
const char *pipeline_elapsed(uint64_t ms, char *buf, size_t size);
#define ELAPSED(ms) pipeline_elapsed((ms), (char[32]){ 0 }, 32)

/* The environment stage st's verb acts on: its own (env:, promote's to:),
 * else the pipeline's --env; NULL: none. */
const char *pipeline_stage_env(const struct run *R, const struct config_stage *st);
/* The argv of stage st into argv (ARGV_MAX entries, NULL-terminated).  The
 * strings belong to st, R, timeout (a buffer of timeout_size bytes) or
 * *ret_owned (NULL or one malloc'd string: the caller frees it).  Returns
 * 0 or -ENOMEM. */
int pipeline_stage_argv(const struct run *R, const struct config_stage *st, const char **argv, char **ret_owned,
			char *timeout, size_t timeout_size);
/* What stage st does, for a person, into buf: the command (its first
 * line) or the verb ("cutover deploy shop 1.2.0 --env staging"). */
void pipeline_stage_summary(const struct run *R, const struct config_stage *st, char *buf, size_t size);
/* Block SIGINT, SIGTERM and SIGCHLD (open only while waiting for a stage)
 * and catch them: SIGINT and SIGTERM stop the stage in progress. */
void pipeline_signals_setup(struct run *R);
/* Run the selected stages in order (R->results[i].selected), each result
 * into R->results.  Returns the exit code (0, 4, 10 + N, 128 + signal). */
int pipeline_run_stages(struct run *R);
