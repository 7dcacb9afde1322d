/*
 * Unit tests for keyed_hash, the hash function of every uthash table:
 * names made to fall into one bucket under uthash's own function
 * (Jenkins's, which anyone can compute) spread like any others, in a
 * table of this file's and in the registry's table of devices; and the
 * key differs from one process to the next.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sys/wait.h>
#include <unistd.h>

#include "filter.h"
#include "keyed_hash.h"
#include "registry_impl.h"

/* Names made to collide, and the low bits they collide in. */
#define FLOOD 2000
#define FLOOD_BITS 7
/* Longer than any chain uthash lets a table grow to by chance. */
#define FLOOD_CHAIN_MAX 20

/*
 * The next name "u<n>", from *n on, whose key (the name, then tail's
 * tail_len bytes) uthash's own function puts into bucket 0 of any table
 * of up to 2^FLOOD_BITS buckets: what a client can compute offline.
 */
static void
flood_name(unsigned long *n, const char *tail, size_t tail_len, char *name,
    size_t size)
{
	char key[64];

	for (;; (*n)++) {
		size_t len = (size_t)snprintf(name, size, "u%lu", *n);
		unsigned h;

		memcpy(key, name, len);
		memcpy(key + len, tail, tail_len);
		HASH_JEN(key, len + tail_len, h);
		if ((h & ((1U << FLOOD_BITS) - 1)) == 0) {
			(*n)++;
			return;
		}
	}
}

/* The longest chain of tbl's buckets. */
static unsigned
longest_chain(const UT_hash_table *tbl)
{
	unsigned most = 0;

	for (unsigned b = 0; b < tbl->num_buckets; b++)
		if (tbl->buckets[b].count > most)
			most = tbl->buckets[b].count;
	return most;
}

struct item {
	char name[24];
	UT_hash_handle hh;
};

static void
test_keyed_hash_flood_table(void **state)
{
	struct item *items = calloc(FLOOD, sizeof(*items)), *head = NULL, *it;
	unsigned long n = 0;

	(void)state;
	for (size_t i = 0; i < FLOOD; i++) {
		flood_name(&n, "", 0, items[i].name, sizeof(items[i].name));
		HASH_ADD_STR(head, name, &items[i]);
	}
	/* Under Jenkins's: uthash stops growing, one chain of FLOOD. */
	assert_int_equal(head->hh.tbl->noexpand, 0);
	assert_true(longest_chain(head->hh.tbl) <= FLOOD_CHAIN_MAX);
	HASH_FIND_STR(head, items[FLOOD / 2].name, it);
	assert_ptr_equal(it, &items[FLOOD / 2]);
	HASH_CLEAR(hh, head);
	free(items);
}

/* The registry's devices are keyed by user and device names together. */
static void
test_keyed_hash_flood_registry(void **state)
{
	struct registry_limits l = {0};
	struct registry *reg = registry_new(&l);
	struct registry_resume none = {REGISTRY_RESUME_NONE, 0};
	struct registry_stream **s = calloc(FLOOD, sizeof(*s));
	struct registry_start start;
	enum registry_error err;
	struct registry_msg *m = registry_msg_new("x", 1);
	unsigned long n = 0;
	char user[24];

	(void)state;
	for (size_t i = 0; i < FLOOD; i++) {
		/* The key: user '\0' "d" '\0'. */
		flood_name(&n, "\0d", 3, user, sizeof(user));
		s[i] = registry_subscribe(reg, user, "d", &none, &start, &err);
		assert_non_null(s[i]);
	}
	assert_int_equal(reg->devices->hh.tbl->noexpand, 0);
	assert_true(longest_chain(reg->devices->hh.tbl) <= FLOOD_CHAIN_MAX);
	assert_int_equal(registry_publish(reg, user, "d", m), REGISTRY_OK);
	registry_msg_unref(m);
	for (size_t i = 0; i < FLOOD; i++)
		registry_unsubscribe(reg, s[i]);
	free(s);
	registry_free(reg);
}

/*
 * SipHash-2-4's reference outputs: key 00 01 .. 0f, message 00 01 .. of
 * each length (the specification's test vectors, as libsodium's
 * crypto_shorthash gives them too).
 */
static void
test_keyed_hash_siphash24_vectors(void **state)
{
	static const struct {
		size_t len;
		uint64_t out;
	} vectors[] = {
	    {0, 0x726fdb47dd0e0e31ULL},
	    {1, 0x74f839c593dc67fdULL},
	    {2, 0x0d6c8009d9a94f5aULL},
	    {3, 0x85676696d7fb7e2dULL},
	    {4, 0xcf2794e0277187b7ULL},
	    {5, 0x18765564cd99a68dULL},
	    {6, 0xcbc9466e58fee3ceULL},
	    {7, 0xab0200f58b01d137ULL},
	    {8, 0x93f5f5799a932462ULL},
	    {9, 0x9e0082df0ba9e4b0ULL},
	    {15, 0xa129ca6149be45e5ULL},
	    {16, 0x3f2acc7f57c29bdbULL},
	    {17, 0x699ae9f52cbe4794ULL},
	    {31, 0x32d892fad841c342ULL},
	    {63, 0x958a324ceb064572ULL},
	};
	unsigned char key[KEYED_HASH_KEY_BYTES], msg[64];

	(void)state;
	for (size_t i = 0; i < sizeof(key); i++)
		key[i] = (unsigned char)i;
	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (unsigned char)i;
	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++)
		assert_true(keyed_hash_siphash24(msg, vectors[i].len, key) ==
		    vectors[i].out);
}

/* Stable within a process; another process has another key. */
static void
test_keyed_hash_per_process(void **state)
{
	unsigned here = keyed_hash("beep", 4), there = 0;
	int fd[2], status;
	pid_t pid;

	(void)state;
	assert_int_equal(keyed_hash("beep", 4), here);
	assert_int_not_equal(keyed_hash("beeq", 4), here);
	assert_int_equal(pipe(fd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/*
		 * A new process: exec'd, as the service is, with its own key.
		 * By its path, not /proc/self/exe, which under valgrind is
		 * valgrind's own program.
		 */
		char arg[16], self[4096];
		ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

		close(fd[0]);
		if (n <= 0)
			_exit(126);
		self[n] = '\0';
		snprintf(arg, sizeof(arg), "%d", fd[1]);
		execl(self, "test_keyed_hash", "--hash", arg, (char *)NULL);
		_exit(127);
	}
	close(fd[1]);
	assert_int_equal(read(fd[0], &there, sizeof(there)), sizeof(there));
	close(fd[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* Equal by chance once in 2^32 runs. */
	assert_int_not_equal(there, here);
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_keyed_hash_flood_table),
	    cmocka_unit_test(test_keyed_hash_flood_registry),
	    cmocka_unit_test(test_keyed_hash_siphash24_vectors),
	    cmocka_unit_test(test_keyed_hash_per_process),
	};

	/* The other process of test_keyed_hash_per_process. */
	if (argc == 3 && strcmp(argv[1], "--hash") == 0) {
		unsigned h = keyed_hash("beep", 4);

		return write(atoi(argv[2]), &h, sizeof(h)) == sizeof(h) ? 0 : 1;
	}
	filter_from_env();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
