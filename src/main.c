/*
 * beep-signal: WebRTC signaling over Server-Sent Events, as a threaded
 * FastCGI responder.  main wires the modules together and owns the
 * signals: they are blocked in every thread and taken here by sigwait().
 */
#include <errno.h>
#include <fcgiapp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "alloc_tune.h"
#include "api.h"
#include "body.h"
#include "cluster.h"
#include "config.h"
#include "keyed_hash.h"
#include "listener.h"
#include "log.h"
#include "metrics.h"
#include "registry.h"
#include "server.h"
#include "util.h"

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/lsan_interface.h>
#endif

#define LOG_MODULE "main"

/* How long a stop may take: streams get their retry: field within it. */
#define MAIN_STOP_TIMEOUT_MS 1500

/*
 * random() makes a cluster node's id (with the host's name and the pid)
 * and spreads clients' retry: times.  Seeded from the kernel: the time
 * and the pid alone are the same for two containers that share a host
 * name, run as pid 1 and start in the same second, which would then share
 * a node id, and so a channel and their registrations in Redis.
 */
static void
main_seed_random(void)
{
	unsigned seed;

	if (getrandom(&seed, sizeof(seed), 0) != (ssize_t)sizeof(seed))
		seed = (unsigned)time(NULL) ^ (unsigned)getpid();
	srandom(seed);
}

/*
 * libfcgi's own read (os_unix.c), replaced: libfcgi calls it through its
 * PLT, so this definition in the executable is the one it calls, and
 * server_conn_read() sees each record before libfcgi reads it (test 72).
 * Here, where only the binary has it: the FastCGI fuzz driver links
 * libfcgi's archive, whose OS_Read() it keeps.  libfcgi's returned -1
 * once its own signal handlers had run; ours are sigwait()'s.
 */
int OS_Read(int fd, char *buf, size_t len);

int
OS_Read(int fd, char *buf, size_t len)
{
	return server_conn_read(fd, buf, len);
}

/*
 * Whether what was printed on stdout (--help, --version, --print-config,
 * --check-config's word) failed to be written, saying so: flushed here,
 * since the flush at exit reports nothing, and a script that saves the
 * output (--print-config > FILE) would go on with a cut file.
 */
static bool
main_stdout_failed(void)
{
	errno = 0;
	if (fflush(stdout) == 0 && !ferror(stdout))
		return false;
	fprintf(stderr, "beep-signal: write error on stdout: %s\n",
	    strerror(errno != 0 ? errno : EIO));
	return true;
}

/* Let this process hold as many connections as the hard limit allows. */
static void
main_raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int
main(int argc, char **argv)
{
	struct registry_limits limits;
	struct registry *reg;
	struct server *srv;
	struct config c;
	struct sigaction hup;
	sigset_t set;
	size_t left;
	int rc, sig, tune_err;

	/* Before anything else: it may re-execute the program. */
	tune_err = alloc_tune_apply(argv) < 0 ? errno : 0;
	rc = config_parse(&c, argc, argv);
	if (rc != 0 && rc != CONFIG_CHECK) {
		config_clear(&c);
		/* --print-config > FILE on a full disk: not a success. */
		if (rc > 0 && main_stdout_failed())
			return 1;
		return rc > 0 ? 0 : 2;
	}
	log_set_level((enum log_level)c.log_level);
	log_set_format((enum log_format)log_format_parse(c.log_format));
	if (rc == CONFIG_CHECK) {
		/* What the start would refuse, short of starting. */
		rc = api_check(&c) < 0 || listener_check(c.listen) < 0 ||
		        cluster_check(&c) < 0
		    ? 2
		    : 0;
		if (rc == 0)
			printf("beep-signal: configuration OK%s%s\n",
			    c.file ? ": " : "", c.file ? c.file : "");
		config_clear(&c);
		return rc == 0 && main_stdout_failed() ? 1 : rc;
	}
	if (tune_err != 0)
		log_warn("could not re-execute with GLIBC_TUNABLES=%s (%s): "
		         "glibc's per-thread caches keep blocks of every size, "
		         "and each stream "
		         "takes a page more of stack",
		    ALLOC_TUNE_SETTINGS, strerror(tune_err));
	metrics_init();
	body_init();
	/* Here, so that a kernel with no random bytes stops it at start. */
	keyed_hash_init();
	main_seed_random();
	main_raise_nofile();

	/*
	 * libfcgi installs its own SIGTERM, SIGPIPE and SIGUSR1 handlers
	 * here; ours come after it, so they win.
	 */
	if (FCGX_Init() != 0) {
		log_error("FCGX_Init failed");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGUSR1, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	/*
	 * A terminal that closes (make run over ssh): stopped as by SIGTERM,
	 * not killed with streams and socket left as they were.  There is
	 * nothing to reload: the configuration is read at start.  Unless
	 * SIGHUP comes ignored (nohup): a blocked signal is never discarded,
	 * so waiting for it would undo what nohup asked for.
	 */
	if (sigaction(SIGHUP, NULL, &hup) == 0 && hup.sa_handler != SIG_IGN)
		sigaddset(&set, SIGHUP);
	/* Blocked here, so blocked in every thread started from now on. */
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	config_registry_limits(&c, &limits);
	if (c.replay_max < c.queue_messages || c.replay_bytes < c.queue_bytes)
		log_warn(
		    "replay limits below the stream queue limits: a stream "
		    "closed for falling behind cannot replay what it "
		    "missed");
	if (c.max_message_memory < c.max_body)
		log_warn("max-message-memory below max-body: the largest "
		         "messages can never be accepted (413)");
	reg = registry_new(&limits);
	srv = server_new(&c, reg);
	if (srv == NULL || server_start(srv) < 0) {
		log_error("could not start");
		/* Threads may have started: exit without touching their data. */
		if (srv != NULL)
			_exit(1);
		registry_free(reg);
		config_clear(&c);
		return 1;
	}
	log_info("ready on %s (max %zu streams, keepalive %us)",
	    server_address(srv), c.max_streams, c.keepalive);

	do {
		if (sigwait(&set, &sig) != 0)
			sig = 0;
	} while (sig != SIGTERM && sig != SIGINT && sig != SIGHUP);

	log_info("%s: stopping", strsignal(sig));
	left = server_stop(srv, MAIN_STOP_TIMEOUT_MS);
	if (left > 0)
		log_warn("%zu requests still in progress at exit", left);
	/* Held back since the last second's summaries: told, not lost. */
	log_limit_sweep(util_now_ms(), true);
	log_info("stopped");
	/*
	 * Workers may still be running: parked on kept-alive connections,
	 * serving a last request, or accepting on an inherited socket.
	 * _exit() ends them without running exit handlers (libcrypto's
	 * cleanup would free state a worker may still be using); logs are
	 * written with write(2), so nothing buffered is lost.
	 */
#ifdef __SANITIZE_ADDRESS__
	/* _exit() skips LeakSanitizer's exit check: run it here. */
	__lsan_do_leak_check();
#endif
	_exit(0);
}
