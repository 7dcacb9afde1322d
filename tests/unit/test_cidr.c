/* Unit tests for cidr: parsing address lists and matching, table-driven. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cidr.h"

static const struct {
	const char *list, *addr;
	bool match;
} cidr_cases[] = {
    {"127.0.0.0/8,::1", "127.0.0.1", true},
    {"127.0.0.0/8,::1", "127.255.1.2", true},
    {"127.0.0.0/8,::1", "::1", true},
    {"127.0.0.0/8,::1", "::ffff:127.0.0.1", true},
    {"127.0.0.0/8,::1", "128.0.0.1", false},
    {"127.0.0.0/8,::1", "10.0.0.1", false},
    {"127.0.0.0/8,::1", "::2", false},
    {"127.0.0.0/8,::1", "", false},
    {"127.0.0.0/8,::1", "localhost", false},
    {"127.0.0.0/8,::1", NULL, false},
    {"10.1.0.0/17", "10.1.127.255", true},
    {"10.1.0.0/17", "10.1.128.0", false},
    {" 192.0.2.7 , 2001:db8::/32 ", "192.0.2.7", true},
    {" 192.0.2.7 , 2001:db8::/32 ", "192.0.2.8", false},
    {" 192.0.2.7 , 2001:db8::/32 ", "2001:db8:1::5", true},
    {" 192.0.2.7 , 2001:db8::/32 ", "2001:db9::5", false},
    {"0.0.0.0/0", "203.0.113.9", true},
    {"0.0.0.0/0", "2001:db8::1", false},
    {"::/0", "2001:db8::1", true},
    {"", "127.0.0.1", false},
};

static void
test_cidr_match(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cidr_cases) / sizeof(cidr_cases[0]);
	     i++) {
		struct cidr_list l;
		const char *why = NULL;

		assert_int_equal(
		    cidr_list_parse(cidr_cases[i].list, &l, &why), 0);
		if (cidr_list_match(&l, cidr_cases[i].addr) !=
		    cidr_cases[i].match)
			fail_msg("case %zu: '%s' in '%s'", i,
			    cidr_cases[i].addr ? cidr_cases[i].addr : "(null)",
			    cidr_cases[i].list);
		cidr_list_clear(&l);
	}
}

static void
test_cidr_refusals(void **state)
{
	static const char *bad[] = {"127.0.0.1/33", "::1/129", "10.0.0.0/",
	    "10.0.0.0/x", "10.0.0.0/8x", "localhost", "127.0.0.1,,::1",
	    "127.0.0.1,", "1.2.3", "10.0.0.0/-1"};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *why = NULL;

		if (cidr_list_parse(bad[i], NULL, &why) != -1)
			fail_msg("accepted '%s'", bad[i]);
		assert_non_null(why);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cidr_match),
	    cmocka_unit_test(test_cidr_refusals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
