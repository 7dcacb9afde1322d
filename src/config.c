/* config: see config.h. */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_option.h"
#include "config_print.h"
#include "log.h"
#include "registry.h"
#include "util.h"

#ifndef BEEP_VERSION
#define BEEP_VERSION "dev"
#endif

/* The longest line of a configuration file, its line break included. */
#define CONFIG_LINE_MAX (1 << 20)

const char config_version[] = BEEP_VERSION;

static int
config_unknown(const char *arg)
{
	char shown[CONFIG_SHOWN];

	fprintf(stderr, "beep-signal: unknown argument '%s' (see --help)\n",
	    log_shown(arg, shown, sizeof(shown)));
	return -1;
}

static const struct config_option *
config_find(const char *name, size_t len)
{
	for (size_t j = 0; j < config_option_count; j++)
		if (strlen(config_options[j].flag) == len &&
		    strncmp(config_options[j].flag, name, len) == 0)
			return &config_options[j];
	return NULL;
}

static char *
config_trim(char *s)
{
	char *e = s + strlen(s);

	while (*s == ' ' || *s == '\t')
		s++;
	while (e > s &&
	    (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

/*
 * Read the configuration file: "key = value" lines, blank lines and
 * comment lines starting with '#'.  A value may be wrapped in double
 * quotes (kept as is inside).  Every error names FILE:LINE.
 */
/*
 * Whether an unquoted value is taken as it is.  Not one that opens a
 * quote it does not close, nor one with a '#' first or after a space:
 * comments take a line of their own, and "s3cret # rotate" would
 * otherwise be the whole secret, and "key = # later" the text
 * "# later", silently.
 */
static bool
config_value_plain(const char *value, const char *where)
{
	if (value[0] == '"') {
		fprintf(stderr,
		    strchr(value + 1, '"') != NULL
		        ? "beep-signal: %s: text after the closing double "
		          "quote: comments take a line of their own\n"
		        : "beep-signal: %s: a double quote not closed\n",
		    where);
		return false;
	}
	/*
	 * A CR inside a line is a file with CR line ends (an old Mac
	 * editor's) read as one line: the value would take in the lines
	 * after it.  Quoted, it is kept (--print-config quotes it).
	 */
	if (strchr(value, '\r') != NULL) {
		fprintf(stderr,
		    "beep-signal: %s: a carriage return inside a line (CR "
		    "line ends? use LF or CRLF; quote the value to keep it)\n",
		    where);
		return false;
	}
	for (const char *p = value; *p != '\0'; p++) {
		if (*p == '#' &&
		    (p == value || p[-1] == ' ' || p[-1] == '\t')) {
			fprintf(stderr,
			    "beep-signal: %s: '#' after a space: comments "
			    "take a line of their own (quote the value to "
			    "keep it)\n",
			    where);
			return false;
		}
	}
	return true;
}

/*
 * One line of f, its line break included, into line (CONFIG_LINE_MAX + 1
 * bytes); its length, or -1 at the end of the file or on an error
 * (ferror()), or -2 when it is longer than CONFIG_LINE_MAX.  Bounded: a
 * file named by mistake (/dev/zero, a dump without a line break) is
 * refused, not read whole into memory; getline()'s failure for want of
 * memory looked like the file's end, and the file was OK (test 93).
 */
static ssize_t
config_line(FILE *f, char *line)
{
	size_t n = 0;
	int ch;

	while ((ch = getc(f)) != EOF) {
		if (n == CONFIG_LINE_MAX)
			return -2;
		line[n++] = (char)ch;
		if (ch == '\n')
			break;
	}
	line[n] = '\0';
	return n > 0 ? (ssize_t)n : -1;
}

static int
config_file(struct config *c, const char *path)
{
	unsigned *seen, lineno = 0;
	FILE *f = fopen(path, "r");
	char *line, where[CONFIG_SHOWN + 16], shown[CONFIG_SHOWN];
	ssize_t n;
	int rc = 0;

	log_shown(path, shown, sizeof(shown));
	if (f == NULL) {
		fprintf(
		    stderr, "beep-signal: %s: %s\n", shown, strerror(errno));
		return -1;
	}
	line = xmalloc(CONFIG_LINE_MAX + 1);
	seen = xcalloc(config_option_count, sizeof(*seen));
	while (rc == 0 && (n = config_line(f, line)) != -1) {
		const struct config_option *o;
		char *key, *value, *eq;
		size_t klen, vlen;

		lineno++;
		snprintf(where, sizeof(where), "%s:%u", shown, lineno);
		if (n == -2) {
			fprintf(stderr,
			    "beep-signal: %s: a line longer than %d bytes\n",
			    where, CONFIG_LINE_MAX);
			rc = -1;
			break;
		}
		/* A NUL would end the line early, and the value with it. */
		if (memchr(line, '\0', (size_t)n) != NULL) {
			fprintf(stderr, "beep-signal: %s: a NUL byte\n", where);
			rc = -1;
			break;
		}
		key = config_trim(line);
		/* A UTF-8 byte order mark (a Windows editor's) is no key. */
		if (lineno == 1 && strncmp(key, "\xEF\xBB\xBF", 3) == 0)
			key = config_trim(key + 3);
		if (*key == '\0' || *key == '#')
			continue;
		eq = strchr(key, '=');
		if (eq == NULL) {
			fprintf(stderr,
			    "beep-signal: %s: expected key = value\n", where);
			rc = -1;
			break;
		}
		klen = (size_t)(eq - key);
		while (
		    klen > 0 && (key[klen - 1] == ' ' || key[klen - 1] == '\t'))
			klen--;
		value = config_trim(eq + 1);
		vlen = strlen(value);
		if (vlen >= 2 && value[0] == '"' && value[vlen - 1] == '"') {
			value[vlen - 1] = '\0';
			value++;
		} else if (!config_value_plain(value, where)) {
			rc = -1;
			break;
		}
		o = config_find(key, klen);
		if (o == NULL) {
			char kshown[CONFIG_SHOWN];

			key[klen] = '\0';
			fprintf(stderr, "beep-signal: %s: unknown key '%s'\n",
			    where, log_shown(key, kshown, sizeof(kshown)));
			rc = -1;
		} else if (seen[o - config_options] != 0) {
			fprintf(stderr,
			    "beep-signal: %s: '%s' set again (first on line "
			    "%u)\n",
			    where, o->flag, seen[o - config_options]);
			rc = -1;
		} else {
			seen[o - config_options] = lineno;
			rc = config_option_set(c, o, value, where, true);
		}
	}
	if (rc == 0 && ferror(f)) {
		fprintf(stderr, "beep-signal: %s: %s\n",
		    log_shown(path, shown, sizeof(shown)), strerror(errno));
		rc = -1;
	}
	free(seen);
	free(line);
	fclose(f);
	return rc;
}

/* What the command line asks for besides options. */
struct config_cli {
	const char *file; /* --config FILE */
	bool check;       /* --check-config */
	bool print;       /* --print-config */
};

/*
 * The first pass over argv: --help and --version (answered at once),
 * --config, --check-config and --print-config.  Returns 0, 1 or -1.
 */
static int
config_cli(int argc, char **argv, struct config_cli *cli)
{
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];

		if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
			config_usage(stdout);
			return 1;
		}
		if (strcmp(arg, "--version") == 0) {
			printf("beep-signal %s\n", config_version);
			return 1;
		}
		if (strcmp(arg, "--check-config") == 0)
			cli->check = true;
		else if (strcmp(arg, "--print-config") == 0)
			cli->print = true;
		else if (strncmp(arg, "--config=", 9) == 0)
			cli->file = arg + 9;
		else if (strcmp(arg, "--config") == 0) {
			if (i + 1 == argc) {
				fprintf(stderr,
				    "beep-signal: --config needs a value\n");
				return -1;
			}
			cli->file = argv[++i];
		}
	}
	return 0;
}

/*
 * Settings that cannot work together, whatever their sources: a device's
 * log drops at once a message longer than BEEP_REPLAY_BYTES, even before
 * any stream took it, so a POST of BEEP_MAX_BODY would be answered 200
 * and never delivered.  (Replay limits below the queue's only weaken
 * replay: main() warns.)  -1 after saying why.
 */
static int
config_consistent(const struct config *c)
{
	if (c->replay_bytes < c->max_body) {
		fprintf(stderr,
		    "beep-signal: --replay-bytes (%zu) is below --max-body "
		    "(%zu): a message that long would be dropped as soon as "
		    "it was accepted\n",
		    c->replay_bytes, c->max_body);
		return -1;
	}
	return 0;
}

/* Edits (insert, delete, replace) from a to b, up to 3: 3 means more. */
static unsigned
config_edits(const char *a, const char *b)
{
	unsigned row[64], prev[64];
	size_t na = strlen(a), nb = strlen(b);

	if (nb >= sizeof(row) / sizeof(row[0]) ||
	    (na > nb ? na - nb : nb - na) >= 3)
		return 3;
	for (size_t j = 0; j <= nb; j++)
		row[j] = (unsigned)j;
	for (size_t i = 1; i <= na; i++) {
		memcpy(prev, row, sizeof(row));
		row[0] = (unsigned)i;
		for (size_t j = 1; j <= nb; j++) {
			unsigned v = prev[j - 1] + (a[i - 1] != b[j - 1]);

			if (prev[j] + 1 < v)
				v = prev[j] + 1;
			if (row[j - 1] + 1 < v)
				v = row[j - 1] + 1;
			row[j] = v;
		}
	}
	return row[nb] < 3 ? row[nb] : 3;
}

/*
 * A BEEP_ variable that is no option's but within two edits of one's
 * (BEEP_MAX_STREAM): a typo that would leave the option at its default,
 * untold.  The fronts' and scripts' own variables (BEEP_SOCKET,
 * BEEP_WEB_ROOT, BEEP_NODES, ...) share the prefix and are further from
 * every option's: they are left alone.  A warning, not a refusal.
 */
static void
config_env_typos(void)
{
	extern char **environ;

	for (char **e = environ; e != NULL && *e != NULL; e++) {
		const char *eq = strchr(*e, '=');
		const char *best = NULL;
		unsigned d = 3;
		char name[64], shown[4 * sizeof(name)];

		if (strncmp(*e, "BEEP_", 5) != 0 || eq == NULL ||
		    (size_t)(eq - *e) >= sizeof(name))
			continue;
		memcpy(name, *e, (size_t)(eq - *e));
		name[eq - *e] = '\0';
		if (strcmp(name, "BEEP_CONFIG") == 0)
			continue;
		for (size_t i = 0; i < config_option_count && d > 0; i++) {
			unsigned k = config_edits(name, config_options[i].env);

			if (k < d) {
				d = k;
				best = config_options[i].env;
			}
		}
		if (d > 0 && d < 3)
			fprintf(stderr,
			    "beep-signal: warning: %s is not an option's "
			    "variable, and is ignored: did you mean %s?\n",
			    log_shown(name, shown, sizeof(shown)), best);
	}
}

int
config_parse(struct config *c, int argc, char **argv)
{
	struct config_cli cli = {0};
	int rc;

	memset(c, 0, sizeof(*c));
	rc = config_cli(argc, argv, &cli);
	if (rc != 0)
		return rc;
	for (size_t i = 0; i < config_option_count; i++)
		if (config_option_set(c, &config_options[i],
		        config_options[i].def, "default", false) < 0)
			abort();
	if (cli.file == NULL) {
		const char *env = getenv("BEEP_CONFIG");

		if (env != NULL && env[0] != '\0')
			cli.file = env;
	}
	if (cli.file != NULL && config_file(c, cli.file) < 0)
		return -1;
	config_env_typos();
	for (size_t i = 0; i < config_option_count; i++) {
		const struct config_option *o = &config_options[i];
		const char *env = getenv(o->env);

		if (env != NULL && env[0] != '\0' &&
		    config_option_set(c, o, env, o->env, false) < 0)
			return -1;
	}
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i], *value = NULL, *eq;
		const struct config_option *o;
		size_t len;

		if (strcmp(arg, "--check-config") == 0 ||
		    strcmp(arg, "--print-config") == 0 ||
		    strncmp(arg, "--config=", 9) == 0)
			continue;
		if (strcmp(arg, "--config") == 0) {
			i++;
			continue;
		}
		if (strncmp(arg, "--", 2) != 0)
			return config_unknown(arg);
		arg += 2;
		eq = strchr(arg, '=');
		len = eq ? (size_t)(eq - arg) : strlen(arg);
		o = config_find(arg, len);
		if (o == NULL)
			return config_unknown(argv[i]);
		if (eq != NULL)
			value = eq + 1;
		else if (i + 1 < argc)
			value = argv[++i];
		else {
			fprintf(stderr, "beep-signal: --%s needs a value\n",
			    o->flag);
			return -1;
		}
		if (config_option_set(c, o, value, "command line", false) < 0)
			return -1;
	}
	if (config_consistent(c) < 0)
		return -1;
	if (cli.print) {
		/* One key a line, no escapes: see config_print_check(). */
		if (config_print_check(c) < 0)
			return -1;
		config_print(stdout, c);
		return 1;
	}
	c->file = cli.file;
	return cli.check ? CONFIG_CHECK : 0;
}

/*
 * Here, not in the registry (which knows nothing of the configuration) nor
 * in main (which the unit tests and the fuzz drivers do not link): config
 * needs only the registry's type, so the graph still points one way.
 */
void
config_registry_limits(const struct config *c, struct registry_limits *out)
{
	*out = (struct registry_limits){
	    .max_streams = c->max_streams,
	    /*
	     * A device's reconnect at max_streams, each holding a worker
	     * until the stream it replaced ends: the server runs
	     * 2 * min_idle + 256 beyond max_streams, so this many leave
	     * min_idle + 256 for short requests.
	     */
	    .max_over = c->min_idle,
	    .queue_messages = c->queue_messages,
	    .queue_bytes = c->queue_bytes,
	    .replay_max = c->replay_max,
	    .replay_bytes = c->replay_bytes,
	    .sender_share = c->sender_share,
	    .replay_ms = (uint64_t)c->replay_seconds * 1000,
	    .grace_ms = (uint64_t)c->grace_seconds * 1000,
	    .streams_per_device = c->max_streams_per_device,
	    .devices_per_user = c->max_devices_per_user,
	    .max_devices = c->max_devices,
	    .max_message_bytes = c->max_message_memory,
	    .msg_overhead = REGISTRY_MSG_OVERHEAD,
	    .stuck_ms = c->stuck_ms,
	    .catch_up_ms = (uint64_t)c->catch_up_seconds * 1000,
	};
}
