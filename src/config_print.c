/* config_print: see config_print.h. */
#include "config_print.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_option.h"
#include "log.h"
#include "util.h"

void
config_usage(FILE *f)
{
	size_t flag_w = 0, env_w = 0;

	fprintf(f,
	    "Usage: beep-signal [OPTION]...\n"
	    "WebRTC signaling over Server-Sent Events, as a FastCGI "
	    "responder.\n\n"
	    "Every option may also be set by its environment variable or as\n"
	    "a key (its name without --) in the configuration file; a flag\n"
	    "wins over the environment, which wins over the file.\n\n");
	/* Columns as wide as the longest flag and variable. */
	for (size_t i = 0; i < config_option_count; i++) {
		size_t fl = strlen(config_options[i].flag);
		size_t el = strlen(config_options[i].env);

		flag_w = fl > flag_w ? fl : flag_w;
		env_w = el > env_w ? el : env_w;
	}
	for (size_t i = 0; i < config_option_count; i++) {
		const struct config_option *o = &config_options[i];

		fprintf(f, "  --%-*s %-*s default: %s\n", (int)flag_w, o->flag,
		    (int)env_w, o->env, o->def[0] ? o->def : "(none)");
		fprintf(f, "      %s\n", o->help);
	}
	fprintf(f,
	    "  --config FILE            read options from FILE (or "
	    "BEEP_CONFIG=FILE)\n"
	    "  --check-config           check the options and the file, "
	    "then exit\n"
	    "  --print-config           print the options in effect, as a "
	    "file, then exit\n"
	    "  --help                   show this help\n"
	    "  --version                show the version\n");
}

/* Print one option's value as the file would hold it. */
static void
config_value(FILE *f, const struct config *c, const struct config_option *o)
{
	const char *p = (const char *)c + o->offset;

	switch (o->type) {
	case CONFIG_STR: {
		const char *v = *(char *const *)p;
		size_t len = strlen(v);

		/*
		 * Quoted when the file would not read it back as it is
		 * (config_file()): a '#' (refused after a space), a quote
		 * at either end, a space at either end (trimmed), a CR (at
		 * the end trimmed as a CRLF line's, inside refused as CR
		 * line ends).
		 */
		if (len > 0 &&
		    (strchr(v, '#') != NULL || strchr(v, '\r') != NULL ||
		        v[0] == '"' || v[len - 1] == '"' ||
		        strchr(" \t", v[0]) != NULL ||
		        strchr(" \t", v[len - 1]) != NULL))
			fprintf(f, "\"%s\"", v);
		else
			fputs(v, f);
		break;
	}
	case CONFIG_LEVEL:
		fputs(log_level_name[*(const int *)p], f);
		break;
	case CONFIG_MODE:
		fprintf(f, "%04o", *(const unsigned *)p);
		break;
	case CONFIG_UINT:
		fprintf(f, "%u", *(const unsigned *)p);
		break;
	case CONFIG_SIZE:
		fprintf(f, "%zu", *(const size_t *)p);
		break;
	}
}

/* Write text as "# " comment lines of at most 76 columns. */
static void
config_comment(FILE *f, const char *text)
{
	while (*text != '\0') {
		size_t len = strlen(text), cut = len;

		if (len > 74) {
			cut = 74;
			while (cut > 0 && text[cut] != ' ')
				cut--;
			if (cut == 0)
				cut = strcspn(text, " ");
		}
		fprintf(f, "# %.*s\n", (int)cut, text);
		text += cut;
		while (*text == ' ')
			text++;
	}
}

/*
 * Whether every value can be written to a file that reads back as it is:
 * not one with a line break (a file holds a key a line, and has no
 * escapes: the rest of the value would be a line of its own, an error
 * or another key).  -1, saying which, when one cannot.
 */
int
config_print_check(const struct config *c)
{
	for (size_t i = 0; i < config_option_count; i++) {
		const struct config_option *o = &config_options[i];

		if (o->type == CONFIG_STR &&
		    strchr(*(char *const *)((const char *)c + o->offset),
		        '\n') != NULL) {
			fprintf(stderr,
			    "beep-signal: --print-config: %s has a line "
			    "break, which a configuration file cannot hold: "
			    "set it by %s or --%s\n",
			    o->flag, o->env, o->flag);
			return -1;
		}
	}
	return 0;
}

void
config_print(FILE *f, const struct config *c)
{
	struct config def;

	memset(&def, 0, sizeof(def));
	for (size_t i = 0; i < config_option_count; i++)
		if (config_option_set(&def, &config_options[i],
		        config_options[i].def, "default", false) < 0)
			abort();
	fprintf(f,
	    "# beep-signal configuration file: beep-signal --config FILE, or\n"
	    "# BEEP_CONFIG=FILE.  Written by beep-signal --print-config.\n"
	    "#\n"
	    "# One \"key = value\" per line; lines starting with '#' are "
	    "comments\n"
	    "# (a '#' after a space in a value is an error: quote the value "
	    "to keep it).\n"
	    "# A key is a long option without its \"--\"; a value may be "
	    "wrapped in\n"
	    "# double quotes.  A flag wins over the environment variable "
	    "(named\n"
	    "# below each key), which wins over this file, which wins over "
	    "the\n"
	    "# default.  Unknown keys, keys set twice and invalid values are\n"
	    "# errors: check a file with\n"
	    "#   beep-signal --config FILE --check-config\n"
	    "# Keys at their default are shown commented out.\n");
	for (size_t i = 0; i < config_option_count; i++) {
		const struct config_option *o = &config_options[i];
		char range[128] = "";
		bool is_def;

		if (o->type == CONFIG_UINT || o->type == CONFIG_SIZE)
			snprintf(range, sizeof(range),
			    "; a whole number from %ju to %ju", o->min, o->max);
		else if (o->type == CONFIG_MODE)
			snprintf(range, sizeof(range),
			    "; an octal mode up to %jo", o->max);
		fputc('\n', f);
		{
			struct buf b = {0};

			buf_printf(&b, "%s: %s%s. Environment: %s.", o->flag,
			    o->help, range, o->env);
			config_comment(f, b.data);
			buf_free(&b);
		}
		fprintf(f, "# default: %s\n", o->def[0] ? o->def : "(none)");
		if (o->type == CONFIG_STR)
			is_def = strcmp(*(char *const *)((const char *)c +
			                    o->offset),
			             *(char *const *)((const char *)&def +
			                 o->offset)) == 0;
		else
			is_def =
			    memcmp((const char *)c + o->offset,
			        (const char *)&def + o->offset,
			        o->type == CONFIG_SIZE ? sizeof(size_t)
			                               : sizeof(unsigned)) == 0;
		fprintf(f, "%s%s =", is_def ? "#" : "", o->flag);
		if (o->type != CONFIG_STR ||
		    (*(char *const *)((const char *)c + o->offset))[0] != '\0')
			fputc(' ', f);
		config_value(f, c, o);
		fputc('\n', f);
	}
	config_clear(&def);
}
