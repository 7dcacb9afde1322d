/*
 * log: one line per event on stderr, as text,
 * "2026-11-25T15:00:00.123Z LEVEL module: message", or as one JSON object
 * per line (BEEP_LOG_FORMAT=json), for journald and log shippers:
 * {"time":"2026-11-25T15:00:00.123Z","level":"info","module":"main",
 * "message":"..."}.  Thread-safe: each line is written with a single
 * write(2).  No allocation: a line longer than LOG_LINE_MAX is cut.
 */
#ifndef BEEP_LOG_H
#define BEEP_LOG_H

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

#define log_debug(...) log_write(LOG_DEBUG, LOG_MODULE, __VA_ARGS__)
#define log_info(...) log_write(LOG_INFO, LOG_MODULE, __VA_ARGS__)
#define log_warn(...) log_write(LOG_WARN, LOG_MODULE, __VA_ARGS__)
#define log_error(...) log_write(LOG_ERROR, LOG_MODULE, __VA_ARGS__)

#endif
