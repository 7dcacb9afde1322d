/* log: see log.h. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

const char *const log_level_name[LOG__MAX] = {
    [LOG_DEBUG] = "debug",
    [LOG_INFO] = "info",
    [LOG_WARN] = "warn",
    [LOG_ERROR] = "error",
};

static enum log_level log_min = LOG_INFO;

void
log_set_level(enum log_level level)
{
	log_min = level;
}

int
log_level_parse(const char *s)
{
	for (int i = 0; i < LOG__MAX; i++)
		if (strcmp(s, log_level_name[i]) == 0)
			return i;
	return -1;
}

int
log_enabled(enum log_level level)
{
	return level >= log_min;
}

void
log_write(enum log_level level, const char *module, const char *fmt, ...)
{
	char line[1024];
	struct timespec ts;
	struct tm tm;
	va_list ap;
	size_t n;
	int r;

	if (level < log_min)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	r = snprintf(line + n, sizeof(line) - n,
	    ".%03ldZ %s %s: ", ts.tv_nsec / 1000000, log_level_name[level],
	    module);
	n += (size_t)r;
	va_start(ap, fmt);
	r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	/* A long line is cut, never split: keep room for the newline. */
	if (r < 0 || (size_t)r >= sizeof(line) - n)
		n = sizeof(line) - 2;
	else
		n += (size_t)r;
	line[n++] = '\n';
	/* One write per line, so lines from threads never interleave. */
	if (write(STDERR_FILENO, line, n) < 0)
		return;
}
