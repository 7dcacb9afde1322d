/*
 * config_check: whether a string setting's value is one the service can
 * use: one of its words (--auth, --jwt-alg, --list-policy, --log-format),
 * and well-formed (--cors-origins: origins as a browser writes them in an
 * Origin header; --jwt-cookie: a cookie name; --auth-param: a FastCGI
 * parameter the client cannot choose; --metrics-allow: an address list).
 * Pure: no I/O.  Start-up only, one thread: a reason may sit in a static
 * buffer until the next call.  Called by config's option table for every
 * value it sets; what --check-config checks beyond values (CONFIG_CHECK)
 * is main's.
 */
#ifndef BEEP_CONFIG_CHECK_H
#define BEEP_CONFIG_CHECK_H

#include <stdbool.h>

/*
 * Whether value is one of the words the option flag (its name without
 * "--") is limited to; true for an option without such a list.
 */
bool config_check_choice(const char *flag, const char *value);

/*
 * Whether value is well-formed for the option flag (its name without
 * "--"); true for an option without such a rule.  When false, *why is the
 * reason, for the error message (static, or valid until the next call).
 */
bool config_check_str(const char *flag, const char *value, const char **why);

#endif
