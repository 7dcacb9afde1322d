/* log: see log.h. */
#include "log.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

const char *const log_level_name[LOG__MAX] = {
    [LOG_DEBUG] = "debug",
    [LOG_INFO] = "info",
    [LOG_WARN] = "warn",
    [LOG_ERROR] = "error",
};

static const char *const log_format_name[LOG_FORMAT__MAX] = {
    [LOG_FORMAT_TEXT] = "text",
    [LOG_FORMAT_JSON] = "json",
};

static enum log_level log_min = LOG_INFO;
static enum log_format log_format = LOG_FORMAT_TEXT;

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

void
log_set_format(enum log_format format)
{
	log_format = format;
}

int
log_format_parse(const char *s)
{
	for (int i = 0; i < LOG_FORMAT__MAX; i++)
		if (strcmp(s, log_format_name[i]) == 0)
			return i;
	return -1;
}

int
log_enabled(enum log_level level)
{
	return level >= log_min;
}

/*
 * The length of the character that starts p if it is one a line escapes
 * though it is no C0 control, else 0: a C1 control, U+0080 to U+009F (C2
 * 80 to C2 9F), which some terminals act on in UTF-8 too (U+009B is the
 * 8-bit CSI, U+009D OSC), and the Unicode line breaks, NEL (U+0085, a C1
 * control) and U+2028, U+2029 (E2 80 A8, E2 80 A9), where a reader that
 * splits on them (Python's str.splitlines, some log shippers) splits a
 * line.  JSON lets them all through raw, and text the service did not
 * write (a path, an answer from Redis) may hold them.
 */
static size_t
log_unicode_control(const unsigned char *p)
{
	if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
		return 2;
	if (p[0] == 0xe2 && p[1] == 0x80 && (p[2] == 0xa8 || p[2] == 0xa9))
		return 3;
	return 0;
}

/*
 * The length of the well-formed UTF-8 sequence of two to four bytes that
 * starts p, else 0 (p[0] is 0x80 or above).  The second byte's range rules
 * out what a strict reader refuses (RFC 3629, table 3-7 of Unicode):
 * overlong forms after C0, C1, E0 and F0, surrogates after ED, and past
 * U+10FFFF after F4.  A sequence cut short by the string's end is none.
 */
static size_t
log_utf8_len(const unsigned char *p)
{
	size_t want = *p >= 0xf0 ? 4 : *p >= 0xe0 ? 3 : 2;
	unsigned char lo = *p == 0xe0 ? 0xa0 : *p == 0xf0 ? 0x90 : 0x80;
	unsigned char hi = *p == 0xed ? 0x9f : *p == 0xf4 ? 0x8f : 0xbf;

	if (*p < 0xc2 || *p > 0xf4 || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < want; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	return want;
}

/*
 * Append s as the inside of a JSON string to out[*n..size), stopping
 * (without splitting an escape) when fewer than reserve bytes would be
 * left.  Control characters are escaped, C1 ones (U+0080 to U+009F)
 * and U+2028, U+2029 too (log_unicode_control()); bytes that are not
 * UTF-8 become U+FFFD (overlong forms, surrogates and code points past
 * U+10FFFF too), so every line is valid JSON whatever a message holds.
 */
static void
log_json_string(
    char *out, size_t *n, size_t size, size_t reserve, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;

	while (*p != '\0') {
		char esc[8];
		size_t len = 0, adv = 1, brk;

		if (*p == '"' || *p == '\\') {
			esc[len++] = '\\';
			esc[len++] = (char)*p;
		} else if (*p == '\n' || *p == '\t' || *p == '\r') {
			esc[len++] = '\\';
			esc[len++] = *p == '\n' ? 'n' : *p == '\t' ? 't' : 'r';
		} else if (*p < 0x20 || *p == 0x7f) {
			memcpy(esc, "\\u00", 4);
			len = 4;
			esc[len++] = hex[*p >> 4];
			esc[len++] = hex[*p & 15];
		} else if (*p < 0x80) {
			esc[len++] = (char)*p;
		} else if ((brk = log_unicode_control(p)) > 0) {
			/* Its code point: C2 xx is U+00xx, E2 80 xx U+20(xx-80). */
			unsigned cp =
			    brk == 2 ? p[1] : 0x2000u | (p[2] & 0x3fu);

			esc[len++] = '\\';
			esc[len++] = 'u';
			for (int shift = 12; shift >= 0; shift -= 4)
				esc[len++] = hex[(cp >> shift) & 15];
			adv = brk;
		} else if ((len = log_utf8_len(p)) > 0) {
			/* A whole, well-formed UTF-8 sequence. */
			memcpy(esc, p, len);
			adv = len;
		} else {
			/* A byte that is no UTF-8: U+FFFD. */
			memcpy(esc, "\xef\xbf\xbd", 3);
			len = 3;
		}
		if (*n + len + reserve > size)
			return;
		memcpy(out + *n, esc, len);
		*n += len;
		p += adv;
	}
}

/*
 * Append s to out[*n..size) as text for a text line, stopping (without
 * splitting an escape or a character) when fewer than reserve bytes would
 * be left.  A control character (C0, DEL) is written as an escape (\n, \r,
 * \t, \xHH): text the service did not write (a configuration value, a
 * path, an answer from Redis, a client id) can neither end the line, and
 * start one that looks like the service's own, nor drive the terminal that
 * shows it.  A C1 control (U+0080 to U+009F, which some terminals act on)
 * and U+2028, U+2029 (log_unicode_control()) are written as the \xHH of
 * each of their bytes, so neither can they; so is each byte that is not
 * UTF-8 (log_utf8_len()), a lone 9B (the 8-bit CSI to a terminal that
 * reads bytes as Latin-1) among them, so a text line is always valid
 * UTF-8.  Other UTF-8 is copied a whole character at a time.
 */
static void
log_text_string(
    char *out, size_t *n, size_t size, size_t reserve, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;

	while (*p != '\0') {
		char esc[12];
		size_t len = 0, brk = log_unicode_control(p);
		size_t chr = *p >= 0x80 ? log_utf8_len(p) : 0;
		size_t adv = brk > 0 ? brk : chr > 0 ? chr : 1;

		if (brk > 0) {
			for (size_t i = 0; i < brk; i++) {
				esc[len++] = '\\';
				esc[len++] = 'x';
				esc[len++] = hex[p[i] >> 4];
				esc[len++] = hex[p[i] & 15];
			}
		} else if (chr > 0) {
			memcpy(esc, p, chr);
			len = chr;
		} else if (*p >= 0x20 && *p < 0x7f) {
			esc[len++] = (char)*p;
		} else if (*p == '\n' || *p == '\r' || *p == '\t') {
			esc[len++] = '\\';
			esc[len++] = *p == '\n' ? 'n' : *p == '\r' ? 'r' : 't';
		} else {
			/* C0, DEL, or a byte that is no UTF-8 (alone). */
			esc[len++] = '\\';
			esc[len++] = 'x';
			esc[len++] = hex[*p >> 4];
			esc[len++] = hex[*p & 15];
		}
		if (*n + len + reserve > size)
			return;
		memcpy(out + *n, esc, len);
		*n += len;
		p += adv;
	}
}

const char *
log_shown(const char *s, char *out, size_t size)
{
	size_t n = 0;

	log_text_string(out, &n, size, 1, s);
	out[n] = '\0';
	return out;
}

/* Lines not written because stderr's reader was not reading. */
static atomic_ulong log_dropped;

/*
 * Write line[0..n) to stderr in one call, never waiting: a thread that
 * logs may hold a lock other threads wait on, and stderr's reader
 * (journald's stream socket, a pipe to a logger) may stall.  A socket
 * takes MSG_DONTWAIT; anything else is written only when poll() says it
 * takes more now (a line is at most LOG_LINE_MAX, within PIPE_BUF: one
 * free page of a pipe holds it whole), one thread at a time (two that
 * both saw the one free page would otherwise both write).  Whether it
 * was written.
 */
static bool
log_emit(const char *line, size_t n)
{
	/* The look and the write as one, among this process's threads. */
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	struct pollfd p = {.fd = STDERR_FILENO, .events = POLLOUT};
	ssize_t w = send(STDERR_FILENO, line, n, MSG_DONTWAIT | MSG_NOSIGNAL);
	bool ok;

	if (w >= 0)
		return true;
	if (errno != ENOTSOCK)
		return false;
	pthread_mutex_lock(&lock);
	ok = poll(&p, 1, 0) == 1 && (p.revents & POLLOUT) != 0 &&
	    write(STDERR_FILENO, line, n) >= 0;
	pthread_mutex_unlock(&lock);
	return ok;
}

void
log_write(enum log_level level, const char *module, const char *fmt, ...)
{
	char line[LOG_LINE_MAX], msg[LOG_LINE_MAX], stamp[40];
	struct timespec ts;
	struct tm tm;
	va_list ap;
	size_t n;
	int r;

	if (level < log_min)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(stamp + n, sizeof(stamp) - n, ".%03ldZ", ts.tv_nsec / 1000000);
	va_start(ap, fmt);
	r = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (r < 0)
		msg[0] = '\0';
	if (log_format == LOG_FORMAT_JSON) {
		n = (size_t)snprintf(line, sizeof(line),
		    "{\"time\":\"%s\",\"level\":\"%s\",\"module\":\"", stamp,
		    log_level_name[level]);
		log_json_string(line, &n, sizeof(line), 64, module);
		memcpy(line + n, "\",\"message\":\"", 13);
		n += 13;
		/* Room for the closing "} and the newline. */
		log_json_string(line, &n, sizeof(line), 3, msg);
		line[n++] = '"';
		line[n++] = '}';
	} else {
		r = snprintf(line, sizeof(line), "%s %s %s: ", stamp,
		    log_level_name[level], module);
		n = r < 0 ? 0 : (size_t)r; /* short: the module is ours */
		/* A long line is cut, never split: keep room for the newline. */
		log_text_string(line, &n, sizeof(line), 1, msg);
	}
	line[n++] = '\n';
	/*
	 * One write per line, so lines from threads never interleave; after
	 * lines were dropped, the first that fits says how many first.
	 */
	if (atomic_load(&log_dropped) > 0) {
		unsigned long dropped = atomic_exchange(&log_dropped, 0);
		char note[160];
		int k = snprintf(note, sizeof(note),
		    log_format == LOG_FORMAT_JSON
		        ? "{\"time\":\"%s\",\"level\":\"warn\",\"module\":"
		          "\"log\",\"message\":\"%lu log lines dropped: "
		          "stderr was not read\"}\n"
		        : "%s warn log: %lu log lines dropped: stderr was not "
		          "read\n",
		    stamp, dropped);

		if (k < 0 || (size_t)k >= sizeof(note) ||
		    !log_emit(note, (size_t)k)) {
			atomic_fetch_add(&log_dropped, dropped + 1);
			return;
		}
	}
	if (!log_emit(line, n))
		atomic_fetch_add(&log_dropped, 1);
}

/* The limits that held a line back, for log_limit_sweep(); pushed only. */
static _Atomic(struct log_limit *) log_limits;

bool
log_limit_pass(struct log_limit *l, uint64_t now_ms, uint64_t *held)
{
	uint64_t was = atomic_load(&l->last_ms);

	/* A clock read before another thread's pass may be behind was. */
	if ((was != 0 && now_ms < was + LOG_LIMIT_MS) ||
	    !atomic_compare_exchange_strong(&l->last_ms, &was, now_ms)) {
		atomic_fetch_add(&l->held, 1);
		if (l->what != NULL && !atomic_exchange(&l->listed, true)) {
			struct log_limit *head = atomic_load(&log_limits);

			do
				l->next = head;
			while (!atomic_compare_exchange_weak(
			    &log_limits, &head, l));
		}
		return false;
	}
	*held = atomic_exchange(&l->held, 0);
	return true;
}

void
log_limit_sweep(uint64_t now_ms, bool all)
{
	for (struct log_limit *l = atomic_load(&log_limits); l != NULL;
	     l = l->next) {
		uint64_t was = atomic_load(&l->last_ms), n;

		if (atomic_load(&l->held) == 0 ||
		    (!all && now_ms < was + LOG_LIMIT_MS))
			continue;
		/*
		 * The summary takes the window, as a line let through does:
		 * a kind stays at one line per LOG_LIMIT_MS.  A pass that
		 * took it first says the count itself.
		 */
		if (!atomic_compare_exchange_strong(&l->last_ms, &was, now_ms))
			continue;
		n = atomic_exchange(&l->held, 0);
		/*
		 * An error kind's count at warn: the first of them was the
		 * error (what an alert keys on, with its text); a count of
		 * more like it is no new one, nor says which.
		 */
		if (n > 0)
			log_write(l->level < LOG_WARN ? l->level : LOG_WARN,
			    l->module,
			    "%llu more not logged in the last %llu s: %s",
			    (unsigned long long)n,
			    (unsigned long long)(now_ms > was
			            ? (now_ms - was + 999) / 1000
			            : 1),
			    l->what);
	}
}
