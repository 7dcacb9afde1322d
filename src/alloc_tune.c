/*
 * alloc_tune: glibc's settings for a thread per stream; see the header
 * for why.
 */
#include "alloc_tune.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "util.h"

/* Builds whose allocator is not glibc's: tunables would change nothing. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define ALLOC_TUNE_OWN_ALLOCATOR 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) ||     \
    __has_feature(memory_sanitizer)
#define ALLOC_TUNE_OWN_ALLOCATOR 1
#endif
#endif

/* Whether the colon-separated tunables name `name` (as name=value). */
static bool
alloc_tune_names(const char *tunables, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = tunables; p != NULL && *p != '\0';) {
		const char *end = strchr(p, ':');
		size_t len = end ? (size_t)(end - p) : strlen(p);

		if (len > n && strncmp(p, name, n) == 0 && p[n] == '=')
			return true;
		p = end ? end + 1 : NULL;
	}
	return false;
}

/*
 * Each setting, and the other tunable that, named by the operator, also
 * means they chose for it (the cache's size is its count and its largest
 * block: one named, the other is theirs to leave as glibc has it).
 */
static const struct {
	const char *set;
	const char *also;
} alloc_tune_settings[] = {
    {ALLOC_TUNE_TCACHE, ALLOC_TUNE_TCACHE_ALSO},
    {ALLOC_TUNE_NNS, NULL},
    {ALLOC_TUNE_STATIC_TLS, NULL},
};

char *
alloc_tune_tunables(const char *current)
{
	struct buf b = {0};
	bool added = false;

	if (current != NULL && *current != '\0')
		buf_puts(&b, current);
	for (size_t i = 0;
	     i < sizeof(alloc_tune_settings) / sizeof(alloc_tune_settings[0]);
	     i++) {
		const char *set = alloc_tune_settings[i].set;
		const char *also = alloc_tune_settings[i].also;
		char name[64];
		size_t n = strcspn(set, "=");

		memcpy(name, set, n);
		name[n] = '\0';
		if (current != NULL &&
		    (alloc_tune_names(current, name) ||
		        (also != NULL && alloc_tune_names(current, also))))
			continue;
		buf_printf(&b, "%s%s", b.len > 0 ? ":" : "", set);
		added = true;
	}
	if (!added) {
		buf_free(&b);
		return NULL;
	}
	return b.data;
}

#if defined(__GLIBC__) && !defined(ALLOC_TUNE_OWN_ALLOCATOR)
/*
 * The kernel names a process after the file it executes: after the
 * re-exec, "exe" (of /proc/self/exe), in ps, top and pgrep.  Give it back
 * the name it was started under, which is argv[0]'s last part.
 */
static void
alloc_tune_rename(char **argv)
{
	char comm[16] = {0};
	const char *base;

	if (argv[0] == NULL || prctl(PR_GET_NAME, comm) != 0 ||
	    strcmp(comm, "exe") != 0)
		return;
	base = strrchr(argv[0], '/');
	base = base ? base + 1 : argv[0];
	if (*base != '\0' && strcmp(base, "exe") != 0)
		prctl(PR_SET_NAME, base);
}
#endif

int
alloc_tune_apply(char **argv)
{
#if !defined(__GLIBC__) || defined(ALLOC_TUNE_OWN_ALLOCATOR)
	(void)argv;
	return 0;
#else
	const char *current = getenv("GLIBC_TUNABLES");
	const char *preload = getenv("LD_PRELOAD");
	char *saved, *want;
	int err;

	/* Set-user-id: glibc drops tunables, so the exec would loop. */
	if (getauxval(AT_SECURE) != 0)
		return 0;
	/*
	 * Started through the loader (ld.so PROGRAM ARGS): /proc/self/exe is
	 * ld.so, which would take our first argument for the program.
	 */
	if (getauxval(AT_BASE) == 0)
		return 0;
	/* valgrind's allocator: an exec would also leave valgrind. */
	if (preload != NULL && strstr(preload, "vgpreload") != NULL)
		return 0;
	want = alloc_tune_tunables(current);
	if (want == NULL) {
		/* Set: by the operator, or by us before the re-exec. */
		alloc_tune_rename(argv);
		return 0;
	}
	saved = current ? xstrdup(current) : NULL;
	if (setenv("GLIBC_TUNABLES", want, 1) == 0)
		execv("/proc/self/exe", argv);
	err = errno;
	/* Still here: run as we are, with the environment we were given. */
	if (saved != NULL)
		setenv("GLIBC_TUNABLES", saved, 1);
	else
		unsetenv("GLIBC_TUNABLES");
	free(saved);
	free(want);
	errno = err;
	return -1;
#endif
}
