/*
 * log: one line per event on stderr,
 * "2026-11-25T15:00:00.123Z LEVEL module: message".
 * Thread-safe: each line is written with a single write(2).
 */
#ifndef BEEP_LOG_H
#define BEEP_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR, LOG__MAX };

extern const char *const log_level_name[LOG__MAX];

/* Lines below this level are dropped.  Set once, before threads start. */
void log_set_level(enum log_level level);
/* Parse "debug", "info", "warn" or "error"; returns -1 when unknown. */
int log_level_parse(const char *s);
int log_enabled(enum log_level level);

void log_write(enum log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_debug(...) log_write(LOG_DEBUG, LOG_MODULE, __VA_ARGS__)
#define log_info(...) log_write(LOG_INFO, LOG_MODULE, __VA_ARGS__)
#define log_warn(...) log_write(LOG_WARN, LOG_MODULE, __VA_ARGS__)
#define log_error(...) log_write(LOG_ERROR, LOG_MODULE, __VA_ARGS__)

#endif
