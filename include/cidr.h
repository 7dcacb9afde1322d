/*
 * cidr: a list of address ranges ("127.0.0.0/8, ::1/128, 10.1.2.3"), and
 * whether a client's address (REMOTE_ADDR, as text) falls in one.  IPv4
 * addresses written as IPv6 (::ffff:127.0.0.1) match IPv4 ranges.  Pure:
 * no I/O.
 */
#ifndef BEEP_CIDR_H
#define BEEP_CIDR_H

#include <stdbool.h>
#include <stddef.h>

struct cidr_range;

struct cidr_list {
	struct cidr_range *v; /* owned; see cidr_list_clear() */
	size_t n;
};

/*
 * Parse spec, a comma-separated list of ADDRESS or ADDRESS/BITS (spaces
 * allowed around the commas; an empty spec is an empty list, which matches
 * nothing).  Fills l (which may be NULL to only validate) and returns 0,
 * or returns -1 with *why (static) set to the reason.
 */
int cidr_list_parse(const char *spec, struct cidr_list *l, const char **why);

/*
 * Whether addr (text; NULL or unparsable never matches; a zone, as in
 * fe80::1%eth0, is not looked at) is in l.
 */
bool cidr_list_match(const struct cidr_list *l, const char *addr);

/*
 * Whether addr (text, as cidr_list_match() reads it: a zone, as in
 * ::1%lo, is not looked at) is a loopback address: 127.0.0.0/8, also
 * written as IPv6 (::ffff:127.0.0.1), or ::1.  What cidr_list_match()
 * takes for a loopback range's address, this takes for loopback: a check
 * that applies to loopback only (the counters' Host) is not skipped by a
 * form of the address the allow-list takes.
 */
bool cidr_loopback(const char *addr);

void cidr_list_clear(struct cidr_list *l);

/* Room for any key cidr_client_key() writes, its '\0' included. */
#define CIDR_KEY_MAX 48

/*
 * The key a client address (REMOTE_ADDR, as text) is counted by in the
 * per-address limits: an IPv6 address by its network, its first
 * v6_prefix bits ("2001:db8:1:2::/64"), since one host may hold a whole
 * /64; an IPv4 address, also one written as IPv6 (::ffff:1.2.3.4) or
 * translated by NAT64 (64:ff9b::1.2.3.4), as itself; a scoped one by its
 * network and zone ("fe80::/64%eth0"); anything else (NULL
 * reads as "") as it is, cut to fit.
 * Writes CIDR_KEY_MAX bytes at most to out and returns out.
 */
const char *cidr_client_key(const char *addr, unsigned v6_prefix, char *out);

#endif
