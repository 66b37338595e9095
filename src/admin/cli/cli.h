/* cli.h - one function per CLI verb (src/admin/cli/<verb>.c).
 *
 * Exit codes (documented in the README):
 *   0 ok; 1 operation failed; 2 usage or configuration error; 3 daemon unreachable.
 */
#pragma once

enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2, EXIT_UNREACHABLE = 3 };

int cli_daemon(int argc, char **argv);
int cli_proxy(int argc, char **argv);
int cli_check(int argc, char **argv);
int cli_status(int argc, char **argv);
int cli_deploy(int argc, char **argv);
int cli_rollback(int argc, char **argv);
int cli_history(int argc, char **argv);
int cli_audit(int argc, char **argv);
int cli_demo(int argc, char **argv);
int cli_logs(int argc, char **argv);
int cli_release(int argc, char **argv);
int cli_releases(int argc, char **argv);
/* Parse `[--config FILE] [--help]` into *path (default ./cutover.yml).
 * Returns -1 to go on, or the exit code to return at once (help printed:
 * EXIT_OK; bad option or extra argument: EXIT_USAGE, message printed). */
int cli_config_option(int argc, char **argv, const char *help, const char **path);
/* Run a proxy with cfg (owned) until drained; returns an exit code. */
struct config;
int cli_run_proxy(struct config *cfg);
