/* when.c - the time arguments of the CLI (--since, --until of `release
 * list`, `history` and `audit`): an instant written as an ISO date or time
 * in UTC, or relative to now ("2h" ago).
 *
 * Every time cutover prints is UTC ("2026-12-05T10:00:00.000Z"), so an
 * instant without an offset is UTC as well, and a time copied from a table
 * means the same instant when given back.  The parser is pure (now is an
 * argument) so that tests/unit/test_cli.c checks it with a table.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "cli/cli.h"

#define MS_PER_S INT64_C(1000)

/* Read exactly N decimal digits at *p into *ret and move *p past them. */
static bool digits(const char **p, int n, int *ret)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if ((*p)[i] < '0' || (*p)[i] > '9')
			return false;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*ret = v;
	return true;
}

static int days_in_month(int year, int month)
{
	static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

	return month == 2 && leap ? 29 : days[month - 1];
}

/* Days from 1970-01-01 to YEAR-MONTH-DAY (proleptic Gregorian), without
 * timegm() and the process's time zone. */
static int64_t days_from_civil(int year, int month, int day)
{
	int64_t y = year - (month <= 2);
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return era * 146097 + doe - 719468;
}

/* The time of day and the offset after a date: "THH:MM[:SS[.fff]][Z|+HH:MM]"
 * (or with a space for the T).  Adds them to *ms.  False if malformed. */
static bool time_of_day(const char *p, int64_t *ms)
{
	int hour, minute, second = 0, frac = 0, oh, om;
	int64_t v;

	if ((*p != 'T' && *p != 't' && *p != ' ') || (p++, !digits(&p, 2, &hour)) || *p++ != ':' ||
	    !digits(&p, 2, &minute))
		return false;
	if (*p == ':') {
		p++;
		if (!digits(&p, 2, &second))
			return false;
		if (*p == '.' || *p == ',') {
			int scale = 100, d;
			p++;
			if (*p < '0' || *p > '9')
				return false;
			for (; *p >= '0' && *p <= '9'; p++) {
				d = *p - '0';
				frac += d * scale;
				scale /= 10;
			}
		}
	}
	if (hour > 23 || minute > 59 || second > 59)
		return false;
	v = ((int64_t)hour * 3600 + minute * 60 + second) * MS_PER_S + frac;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p++ == '-' ? -1 : 1;
		if (!digits(&p, 2, &oh))
			return false;
		if (*p == ':')
			p++;
		if (!digits(&p, 2, &om) || oh > 23 || om > 59)
			return false;
		v -= sign * ((int64_t)oh * 3600 + om * 60) * MS_PER_S;
	}
	if (*p)
		return false;
	*ms += v;
	return true;
}

/* "YYYY-MM-DD" with an optional time of day: Unix ms into *ret. */
static bool iso(const char *s, int64_t *ret)
{
	const char *p = s;
	int year, month, day;
	int64_t ms;

	if (!digits(&p, 4, &year) || *p++ != '-' || !digits(&p, 2, &month) || *p++ != '-' || !digits(&p, 2, &day))
		return false;
	if (year < 1970 || month < 1 || month > 12 || day < 1 || day > days_in_month(year, month))
		return false;
	ms = days_from_civil(year, month, day) * 86400 * MS_PER_S;
	if (*p && !time_of_day(p, &ms))
		return false;
	*ret = ms;
	return true;
}

/* "2h", "3d", "1d12h", "90m", "30s", "2w" ago: the length into *ret. */
static bool relative(const char *s, int64_t *ret)
{
	static const struct {
		char unit;
		int64_t ms;
	} units[] = {
		{ 's', MS_PER_S }, { 'm', 60 * MS_PER_S }, { 'h', 3600 * MS_PER_S },
		{ 'd', 86400 * MS_PER_S }, { 'w', 7 * 86400 * MS_PER_S },
	};
	const char *p = s;
	int64_t total = 0;

	if (!*p)
		return false;
	while (*p) {
		int64_t n = 0, mult = 0;
		if (*p < '0' || *p > '9')
			return false;
		for (; *p >= '0' && *p <= '9'; p++) {
			n = n * 10 + (*p - '0');
			if (n > INT64_C(1000000000))
				return false;
		}
		for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
			if (*p == units[i].unit)
				mult = units[i].ms;
		if (!mult)
			return false;
		p++;
		total += n * mult;
		if (total > INT64_C(100) * 366 * 86400 * MS_PER_S)
			return false;
	}
	*ret = total;
	return true;
}

int cli_parse_time(const char *s, int64_t now_ms, int64_t *ret)
{
	int64_t v = 0;

	if (!s)
		return -EINVAL;
	if (!strcmp(s, "now")) {
		*ret = now_ms;
		return 0;
	}
	if (relative(s, &v)) {
		*ret = now_ms - v;
		return 0;
	}
	if (iso(s, &v)) {
		*ret = v;
		return 0;
	}
	return -EINVAL;
}

int cli_time_option(const struct cli *c, const char *option, const char *arg, int64_t *ret)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	if (cli_parse_time(arg, (int64_t)ts.tv_sec * MS_PER_S + ts.tv_nsec / 1000000, ret) == 0)
		return -1;
	return cli_fail(c, EXIT_USAGE, NULL,
			"%s: expected a date or time in UTC (2026-12-05, 2026-12-05T10:00, 2026-12-05T10:00:00Z, "
			"with an offset +01:00) or a time ago (30m, 2h, 3d, 1w, 1d12h), got '%s'",
			option, arg);
}
