/*
 * log: one line per event on stderr, as text,
 * "2026-11-25T15:00:00.123Z LEVEL module: message", or as one JSON object
 * per line (BEEP_LOG_FORMAT=json), for journald and log shippers:
 * {"time":"2026-11-25T15:00:00.123Z","level":"info","module":"main",
 * "message":"..."}.  A control character (C0, DEL, C1) in a text line's
 * message is written as an escape (\n, \r, \t, \xHH); a JSON line is
 * valid JSON and UTF-8 whatever the message holds.  Thread-safe: each
 * line is written with a single write(2).  No allocation: a line longer
 * than LOG_LINE_MAX is cut.
 */
#ifndef BEEP_LOG_H
#define BEEP_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR, LOG__MAX };

enum log_format { LOG_FORMAT_TEXT, LOG_FORMAT_JSON, LOG_FORMAT__MAX };

/* The longest line written, newline included. */
#define LOG_LINE_MAX 1024

extern const char *const log_level_name[LOG__MAX];

/* Lines below this level are dropped.  Set once, before threads start. */
void log_set_level(enum log_level level);
/* Parse "debug", "info", "warn" or "error"; returns -1 when unknown. */
int log_level_parse(const char *s);
int log_enabled(enum log_level level);
/* Text or JSON lines.  Set once, before threads start. */
void log_set_format(enum log_format format);
/* Parse "text" or "json"; returns -1 when unknown. */
int log_format_parse(const char *s);

void log_write(enum log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * s as a text line shows it, in out[0..size) (NUL-terminated): control
 * characters and bytes that are not UTF-8 escaped, cut (between
 * characters) to fit.  For what the
 * operator gave (a value, a path, a key) echoed on stderr before logging
 * starts: it can neither drive the terminal nor fake a line.
 */
const char *log_shown(const char *s, char *out, size_t size);

/*
 * A line that traffic can repeat at will (a client's streams falling
 * behind, a thread limit every accept meets) is logged at most once per
 * LOG_LIMIT_MS: log_limit_pass() says whether this one is, and how many
 * were held back since the last that was (*held), for the line to say.
 * Those held back after the last are told by log_limit_sweep(), once
 * LOG_LIMIT_MS has passed since it: "N more not logged in the last S s:
 * what", at the kind's level (warn for an error's), from its module.
 * Else a burst that ends showed as one line saying "(0 more not logged)",
 * and its size was told with the next line of its kind, if one ever came.
 * Declared with LOG_LIMIT(); one for each kind, so that a flood of one
 * hides no other.  Lock-free.
 */
#define LOG_LIMIT_MS 1000

struct log_limit {
	_Atomic uint64_t last_ms; /* when one was last let through; 0: never */
	_Atomic uint64_t held;    /* held back since */
	enum log_level level;     /* the kind's lines' */
	const char *module;       /* the summary's */
	const char *what;         /* the kind, for the summary; NULL: none */
	_Atomic bool listed;      /* on log_limit_sweep()'s list */
	struct log_limit *next;   /* on it */
};

/* A limit for lines of level from this file's module, of the kind what. */
#define LOG_LIMIT(lvl, kind)                                                   \
	{                                                                      \
		.level = (lvl), .module = LOG_MODULE, .what = (kind)           \
	}

bool log_limit_pass(struct log_limit *l, uint64_t now_ms, uint64_t *held);

/*
 * Tell what each limit held back after its last line, where LOG_LIMIT_MS
 * has passed since it (all: whatever the time; at the stop).  Once a
 * second (the server's watcher) is enough: a summary is at most that late.
 */
void log_limit_sweep(uint64_t now_ms, bool all);

#define log_debug(...) log_write(LOG_DEBUG, LOG_MODULE, __VA_ARGS__)
#define log_info(...) log_write(LOG_INFO, LOG_MODULE, __VA_ARGS__)
#define log_warn(...) log_write(LOG_WARN, LOG_MODULE, __VA_ARGS__)
#define log_error(...) log_write(LOG_ERROR, LOG_MODULE, __VA_ARGS__)

#endif
