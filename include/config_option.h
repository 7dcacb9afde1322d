/*
 * config_option: the option table, one row an option (its flag, its
 * environment variable, its type, where in struct config it goes, its
 * default, its range and its help), what sets an option from a value,
 * checked, and config_clear() (config.h), which frees the strings it
 * set.  config reads the values (the file, the environment, the command
 * line) and config_print writes them out (--help, --print-config) by
 * walking the table: adding an option is adding a row here (and a field
 * to struct config).
 */
#ifndef BEEP_CONFIG_OPTION_H
#define BEEP_CONFIG_OPTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

enum config_type {
	CONFIG_UINT,
	CONFIG_SIZE,
	CONFIG_MODE,
	CONFIG_STR,
	CONFIG_LEVEL
};

struct config_option {
	const char *flag; /* without the leading "--" */
	const char *env;
	enum config_type type;
	size_t offset;
	const char *def;
	uintmax_t min, max;
	const char *help;
};

/* The most of an operator's value, path or key an error message echoes. */
#define CONFIG_SHOWN 1024

/* Every option, in --help's order; config_option_count of them. */
extern const struct config_option config_options[];
extern const size_t config_option_count;

/*
 * Set option o of c from value, which source gave: "default", an
 * environment variable, "command line", or "FILE:LINE" (file: then the
 * option is named as a file key, without "--").  A string is copied (c
 * owns it: config_clear()).  0, or -1 after saying on stderr why the value
 * is not one o takes.
 */
int config_option_set(struct config *c, const struct config_option *o,
    const char *value, const char *source, bool file);

#endif
