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
#include "filter.h"

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
    /* Caddy's REMOTE_ADDR for a client on the link: its zone too. */
    {"fe80::/10", "fe80::1%eth0", true},
    {"fe80::/10", "fe80::1%", false},
    {"fe80::1", "fe80::1%2", true},
    {"fe80::1", "fe80::2%2", false},
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
	    "127.0.0.1,", "1.2.3", "10.0.0.0/-1", "fe80::1%eth0",
	    "fe80::%eth0/64"};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *why = NULL;

		if (cidr_list_parse(bad[i], NULL, &why) != -1)
			fail_msg("accepted '%s'", bad[i]);
		assert_non_null(why);
	}
}

/*
 * Loopback as the allow-list reads an address: a zone is not looked at,
 * so ::1%lo is loopback for the checks that apply to loopback only.
 */
static void
test_cidr_loopback(void **state)
{
	static const struct {
		const char *addr;
		bool loopback;
	} cases[] = {
	    {"127.0.0.1", true},
	    {"127.255.0.9", true},
	    {"::1", true},
	    {"::1%lo", true},
	    {"::ffff:127.0.0.1", true},
	    {"::ffff:127.0.0.1%lo", true},
	    {"0:0:0:0:0:0:0:1", true},
	    {"128.0.0.1", false},
	    {"::2", false},
	    {"fe80::1%lo", false},
	    {"::1%", false},
	    {"127.0.0.1%lo", false},
	    {"localhost", false},
	    {"", false},
	    {NULL, false},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (cidr_loopback(cases[i].addr) != cases[i].loopback)
			fail_msg("%s: loopback should be %d",
			    cases[i].addr ? cases[i].addr : "(null)",
			    cases[i].loopback);
}

/* The key a client address is counted by: IPv6 by its network. */
static void
test_cidr_client_key(void **state)
{
	static const struct {
		const char *addr;
		unsigned bits;
		const char *key;
	} cases[] = {
	    {"192.0.2.1", 64, "192.0.2.1"},
	    /* IPv4 written as IPv6 (nginx on a dual-stack socket). */
	    {"::ffff:192.0.2.1", 64, "192.0.2.1"},
	    {"::FFFF:192.0.2.1", 1, "192.0.2.1"},
	    /* And translated by NAT64 (its well-known prefix). */
	    {"64:ff9b::192.0.2.7", 64, "192.0.2.7"},
	    {"64:ff9b::c000:208", 64, "192.0.2.8"},
	    {"64:ff9b:1::c000:208", 64, "64:ff9b:1::/64"},
	    {"2001:db8:1:2:aaaa:bbbb:cccc:dddd", 64, "2001:db8:1:2::/64"},
	    {"2001:db8:1:2::1", 64, "2001:db8:1:2::/64"},
	    {"2001:db8:1:2ff::9", 56, "2001:db8:1:200::/56"},
	    {"2001:db8:1:2ff::9", 60, "2001:db8:1:2f0::/60"},
	    {"2001:db8:1:2ff::9", 63, "2001:db8:1:2fe::/63"},
	    {"ffff::1", 3, "e000::/3"},
	    /* Each address, written one way whatever way it came. */
	    {"2001:DB8:0:0:0:0:0:1", 128, "2001:db8::1"},
	    {"::1", 128, "::1"},
	    {"::1", 64, "::/64"},
	    /*
	     * A link-local address with its zone, as Caddy writes a client's
	     * on the link: by its network on that link, whatever its host.
	     */
	    {"fe80::1%eth0", 64, "fe80::/64%eth0"},
	    {"fe80::aaaa:bbbb:cccc:dddd%eth0", 64, "fe80::/64%eth0"},
	    {"fe80::1%eth1", 64, "fe80::/64%eth1"},
	    {"fe80::1%2", 128, "fe80::1%2"},
	    /* Not an address: as it is, cut to fit. */
	    {"fe80::1%", 64, "fe80::1%"},
	    {"%eth0", 64, "%eth0"},
	    {"fe80::1x%eth0", 64, "fe80::1x%eth0"},
	    {"", 64, ""},
	    {"0123456789012345678901234567890123456789012345678901", 64,
	        "01234567890123456789012345678901234567890123456"},
	};
	char key[CIDR_KEY_MAX];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_string_equal(
		    cidr_client_key(cases[i].addr, cases[i].bits, key),
		    cases[i].key);
	assert_string_equal(cidr_client_key(NULL, 64, key), "");
	/* The longest a zone's key is: the zone cut to fit. */
	assert_string_equal(
	    cidr_client_key("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe%"
	                    "0123456789abcdefghijklmnopqrstuvwxyz",
	        127, key),
	    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127%012");
	/* The longest an IPv6 key is. */
	assert_string_equal(
	    cidr_client_key(
	        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", 127, key),
	    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cidr_match),
	    cmocka_unit_test(test_cidr_refusals),
	    cmocka_unit_test(test_cidr_loopback),
	    cmocka_unit_test(test_cidr_client_key),
	};

	filter_from_env();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
