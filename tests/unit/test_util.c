/* Unit tests for util: the byte buffer, on the heap and on the stack. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "filter.h"
#include "util.h"

/* A buffer on the stack stays there while it fits: no allocation. */
static void
test_buf_on_stack_fits(void **state)
{
	char text[64];
	struct buf b = BUF_ON_STACK(text);

	(void)state;
	buf_append(&b, "id: ", 4);
	buf_puts(&b, "1-2");
	buf_append(&b, "\n", 1);
	assert_ptr_equal(b.data, text);
	assert_string_equal(b.data, "id: 1-2\n");
	assert_int_equal(b.len, 8);
	buf_reset(&b);
	assert_ptr_equal(b.data, text);
	assert_int_equal(b.len, 0);
	buf_free(&b); /* frees nothing: ASan and valgrind would say */
	assert_null(b.data);
}

/*
 * Outgrown, it moves to the heap with its bytes, and grows there; the
 * array is no longer written.  buf_printf() alike.
 */
static void
test_buf_on_stack_grows(void **state)
{
	char text[16], big[100];
	struct buf b = BUF_ON_STACK(text), p;

	(void)state;
	buf_puts(&b, "0123456789");
	memset(big, 'z', sizeof(big));
	buf_append(&b, big, sizeof(big));
	assert_ptr_not_equal(b.data, text);
	assert_int_equal(b.len, 10 + sizeof(big));
	assert_memory_equal(b.data, "0123456789", 10);
	assert_memory_equal(b.data + 10, big, sizeof(big));
	assert_int_equal(b.data[b.len], '\0');
	memset(big, 'y', sizeof(big));
	buf_append(&b, big, sizeof(big));
	assert_int_equal(b.len, 10 + 2 * sizeof(big));
	assert_memory_equal(text, "0123456789", 10);
	buf_free(&b);

	/* buf_printf(): formatted in place while it fits, else moved. */
	p = BUF_ON_STACK(text);
	buf_printf(&p, "%s-%d", "retry", 1000);
	assert_ptr_equal(p.data, text);
	assert_string_equal(p.data, "retry-1000");
	buf_printf(&p, ":%s:%d", "a longer tail than the array holds", 42);
	assert_ptr_not_equal(p.data, text);
	assert_string_equal(
	    p.data, "retry-1000:a longer tail than the array holds:42");
	buf_free(&p);
}

/* buf_to_heap() keeps the bytes where the frame cannot take them. */
static void
test_buf_to_heap(void **state)
{
	char text[32];
	struct buf b = BUF_ON_STACK(text), h = {0};

	(void)state;
	buf_puts(&b, "Content-Type: x\r\n");
	buf_to_heap(&b);
	assert_ptr_not_equal(b.data, text);
	memset(text, 0, sizeof(text));
	assert_string_equal(b.data, "Content-Type: x\r\n");
	buf_puts(&b, "Vary: Origin\r\n");
	assert_string_equal(b.data, "Content-Type: x\r\nVary: Origin\r\n");
	buf_free(&b);

	buf_puts(&h, "heap");
	buf_to_heap(&h); /* already there: unchanged */
	assert_string_equal(h.data, "heap");
	buf_free(&h);
}

static void
test_u64_digits(void **state)
{
	char d[21];
	size_t n;

	(void)state;
	n = util_u64_digits(0, d);
	d[n] = '\0';
	assert_string_equal(d, "0");
	n = util_u64_digits(UINT64_MAX, d);
	d[n] = '\0';
	assert_string_equal(d, "18446744073709551615");
	n = util_u64_digits(1764000000000, d);
	d[n] = '\0';
	assert_string_equal(d, "1764000000000");
	/* Each way the last pair, or digit, can fall. */
	for (size_t i = 0; i < 8; i++) {
		static const uint64_t v[] = {
		    9, 10, 99, 100, 101, 999, 1000, 12345};
		char want[21];

		n = util_u64_digits(v[i], d);
		d[n] = '\0';
		snprintf(want, sizeof(want), "%llu", (unsigned long long)v[i]);
		assert_string_equal(d, want);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_buf_on_stack_fits),
	    cmocka_unit_test(test_buf_on_stack_grows),
	    cmocka_unit_test(test_buf_to_heap),
	    cmocka_unit_test(test_u64_digits),
	};

	filter_from_env();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
