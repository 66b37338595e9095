/* cgroup.c - one cgroup v2 directory per instance, for memory.max and cpu.max.
 *
 * Instances get ROOT/ID (ROOT defaults to /sys/fs/cgroup/cutover).  Inside
 * containers, or on hosts with the legacy hierarchy, this is often not
 * possible; the start then goes on without limits and the caller is told
 * why, in a message meant for the user.  These are writes to cgroupfs, a
 * kernel pseudo-filesystem that does no disk I/O, which is why they may run
 * on the loop thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include "supervisor/supervisor-internal.h"

/* Write a short value to DIR/FILE.  Returns 0 or -errno. */
static int write_attr(const char *dir, const char *file, const char *value)
{
	char path[4096];
	size_t len = strlen(value);
	ssize_t n;
	int fd, r = 0;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, file) >= sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = write(fd, value, len);
	if (n < 0)
		r = -errno;
	else if ((size_t)n != len)
		r = -EIO;
	close(fd);
	return r;
}

/* Append "; REASON" (printf-style) to *msg.  Returns 0 or -ENOMEM. */
static int add_reason(char **msg, const char *fmt, ...)
{
	char *reason = NULL, *joined = NULL;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&reason, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -ENOMEM;
	n = *msg ? asprintf(&joined, "%s; %s", *msg, reason) : asprintf(&joined, "%s", reason);
	free(reason);
	if (n < 0)
		return -ENOMEM;
	free(*msg);
	*msg = joined;
	return 0;
}

static const char *limits_name(const struct sup_cgroup_limits *l)
{
	if (l->memory_max && l->cpu_max_percent)
		return "cgroup v2 memory/cpu limits";
	return l->memory_max ? "cgroup v2 memory limit" : "cgroup v2 cpu limit";
}

int sup_cgroup_create(const char *root, const char *id, const struct sup_cgroup_limits *limits,
		      char **ret_dir, char **ret_warning)
{
	char *mount = NULL, *dir = NULL, *reasons = NULL, *warning = NULL, *slash, value[64];
	bool want_memory = limits->memory_max != 0, want_cpu = limits->cpu_max_percent != 0;
	bool memory_ok = false, cpu_ok = false, created = false;
	struct statfs fs;
	int r = -ENOMEM;

	if (!want_memory && !want_cpu) {
		*ret_dir = NULL;
		*ret_warning = NULL;
		return 0;
	}
	mount = strdup(root);
	if (!mount)
		goto out;
	slash = strrchr(mount, '/');
	if (slash && slash != mount)
		*slash = '\0';
	if (statfs(mount, &fs) < 0 || fs.f_type != CGROUP2_SUPER_MAGIC) {
		if (add_reason(&reasons, "%s is not a cgroup2 mount", mount) < 0)
			goto out;
		goto give_up;
	}
	if (mkdir(root, 0755) < 0 && errno != EEXIST) {
		if (add_reason(&reasons, "%s not writable (%s)", root, strerrordesc_np(errno)) < 0)
			goto out;
		goto give_up;
	}
	if (want_memory && (r = write_attr(root, "cgroup.subtree_control", "+memory")) < 0 &&
	    add_reason(&reasons, "memory controller not available in %s (%s)", root, strerrordesc_np(-r)) < 0) {
		r = -ENOMEM;
		goto out;
	}
	if (want_cpu && (r = write_attr(root, "cgroup.subtree_control", "+cpu")) < 0 &&
	    add_reason(&reasons, "cpu controller not available in %s (%s)", root, strerrordesc_np(-r)) < 0) {
		r = -ENOMEM;
		goto out;
	}
	r = -ENOMEM;
	if (asprintf(&dir, "%s/%s", root, id) < 0) {
		dir = NULL;
		goto out;
	}
	if (mkdir(dir, 0755) == 0) {
		created = true;
	} else if (errno != EEXIST) {
		if (add_reason(&reasons, "%s not writable (%s)", root, strerrordesc_np(errno)) < 0)
			goto out;
		goto give_up;
	}
	if (want_memory) {
		snprintf(value, sizeof(value), "%llu", (unsigned long long)limits->memory_max);
		r = write_attr(dir, "memory.max", value);
		memory_ok = r == 0;
		if (r < 0 && add_reason(&reasons, "cannot write %s/memory.max (%s)", dir, strerrordesc_np(-r)) < 0) {
			r = -ENOMEM;
			goto out;
		}
	}
	if (want_cpu) {
		/* percent of one CPU: quota in us per 100 ms period */
		snprintf(value, sizeof(value), "%llu 100000", (unsigned long long)limits->cpu_max_percent * 1000);
		r = write_attr(dir, "cpu.max", value);
		cpu_ok = r == 0;
		if (r < 0 && add_reason(&reasons, "cannot write %s/cpu.max (%s)", dir, strerrordesc_np(-r)) < 0) {
			r = -ENOMEM;
			goto out;
		}
	}
	if (!memory_ok && !cpu_ok) {
		if (created)
			rmdir(dir);
		goto give_up;
	}
	if ((want_memory && !memory_ok) || (want_cpu && !cpu_ok)) {
		const char *what = want_memory && !memory_ok ? "cgroup v2 memory limit" : "cgroup v2 cpu limit";
		if (asprintf(&warning, "%s not applied: %s", what, reasons) < 0)
			goto out;
	}
	*ret_dir = dir;
	*ret_warning = warning;
	dir = NULL;
	r = 0;
	goto out;

give_up:
	r = -ENOMEM;
	if (asprintf(&warning, "%s not applied: %s; the instance runs without them (rlimits do apply)",
		     limits_name(limits), reasons) < 0)
		goto out;
	*ret_dir = NULL;
	*ret_warning = warning;
	r = 0;
out:
	free(reasons);
	free(dir);
	free(mount);
	return r;
}

int sup_cgroup_attach(const char *dir, pid_t pid)
{
	char value[32];

	snprintf(value, sizeof(value), "%d", (int)pid);
	return write_attr(dir, "cgroup.procs", value);
}

int sup_cgroup_remove(const char *dir)
{
	int r = write_attr(dir, "cgroup.kill", "1"); /* Linux >= 5.14 */

	(void)r; /* older kernels: the process group was killed already */
	if (rmdir(dir) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}
