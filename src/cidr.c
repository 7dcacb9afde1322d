/* cidr: see cidr.h. */
#include "cidr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* Addresses are kept as 16 bytes; IPv4 as ::ffff:a.b.c.d. */
struct cidr_range {
	unsigned char addr[16];
	unsigned bits; /* of the 128 */
};

static const unsigned char cidr_v4_prefix[12] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
/* NAT64's well-known prefix, 64:ff9b::/96 (RFC 6052): an IPv4 client. */
static const unsigned char cidr_nat64_prefix[12] = {
    0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};

/*
 * Parse text as IPv6 into out, with a zone ("fe80::1%eth0"): Go writes a
 * scoped client address so, and Caddy passes it on as REMOTE_ADDR, but
 * inet_pton() takes no zone.  The zone (not empty) in *zone, else NULL.
 */
static int
cidr_addr6(const char *text, unsigned char out[16], const char **zone)
{
	char head[INET6_ADDRSTRLEN];
	const char *pct = strchr(text, '%');
	size_t len;

	*zone = NULL;
	if (pct == NULL)
		return inet_pton(AF_INET6, text, out) == 1 ? 0 : -1;
	len = (size_t)(pct - text);
	if (len >= sizeof(head) || pct[1] == '\0')
		return -1;
	memcpy(head, text, len);
	head[len] = '\0';
	if (inet_pton(AF_INET6, head, out) != 1)
		return -1;
	*zone = pct + 1;
	return 0;
}

/* Parse text as an address into 16 bytes; *v4 says it was IPv4. */
static int
cidr_addr(const char *text, unsigned char out[16], bool *v4)
{
	struct in_addr a4;
	const char *zone;

	if (inet_pton(AF_INET, text, &a4) == 1) {
		memcpy(out, cidr_v4_prefix, 12);
		memcpy(out + 12, &a4, 4);
		*v4 = true;
		return 0;
	}
	*v4 = false;
	return cidr_addr6(text, out, &zone);
}

static int
cidr_range_parse(
    const char *s, size_t len, struct cidr_range *r, const char **why)
{
	char text[64], *slash, *end;
	unsigned long bits;
	bool v4;

	if (len >= sizeof(text)) {
		*why = "an address range is too long";
		return -1;
	}
	memcpy(text, s, len);
	text[len] = '\0';
	slash = strchr(text, '/');
	if (slash != NULL)
		*slash = '\0';
	/* A range holds on every link: a zone would be left unheeded. */
	if (strchr(text, '%') != NULL) {
		*why = "a zone (%) in an address range: a range holds on "
		       "every link";
		return -1;
	}
	if (cidr_addr(text, r->addr, &v4) < 0) {
		*why = "not an IPv4 or IPv6 address";
		return -1;
	}
	bits = v4 ? 32 : 128;
	if (slash != NULL) {
		if (slash[1] < '0' || slash[1] > '9' ||
		    (bits = strtoul(slash + 1, &end, 10), *end != '\0') ||
		    bits > (v4 ? 32u : 128u)) {
			*why = "prefix length out of range (0-32 for IPv4, "
			       "0-128 for IPv6)";
			return -1;
		}
	}
	r->bits = (unsigned)bits + (v4 ? 96 : 0);
	return 0;
}

int
cidr_list_parse(const char *spec, struct cidr_list *l, const char **why)
{
	struct cidr_list tmp = {0};
	const char *p = spec;

	while (*p != '\0') {
		size_t len = strcspn(p, ",");
		const char *s = p, *e = p + len;
		struct cidr_range r;

		while (s < e && (*s == ' ' || *s == '\t'))
			s++;
		while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (e == s) {
			*why = "an empty entry in the list";
			goto fail;
		}
		if (cidr_range_parse(s, (size_t)(e - s), &r, why) < 0)
			goto fail;
		tmp.v = xrealloc(tmp.v, (tmp.n + 1) * sizeof(*tmp.v));
		tmp.v[tmp.n++] = r;
		p += len;
		if (*p == ',' && *++p == '\0') {
			*why = "an empty entry in the list";
			goto fail;
		}
	}
	if (l != NULL)
		*l = tmp;
	else
		cidr_list_clear(&tmp);
	return 0;
fail:
	cidr_list_clear(&tmp);
	return -1;
}

static bool
cidr_range_match(const struct cidr_range *r, const unsigned char a[16])
{
	unsigned full = r->bits / 8, rest = r->bits % 8;

	if (memcmp(r->addr, a, full) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((r->addr[full] ^ a[full]) & (0xff << (8 - rest)) & 0xff) == 0;
}

bool
cidr_list_match(const struct cidr_list *l, const char *addr)
{
	unsigned char a[16];
	bool v4;

	if (addr == NULL || cidr_addr(addr, a, &v4) < 0)
		return false;
	for (size_t i = 0; i < l->n; i++)
		if (cidr_range_match(&l->v[i], a))
			return true;
	return false;
}

bool
cidr_loopback(const char *addr)
{
	static const unsigned char one[16] = {[15] = 1};
	unsigned char a[16];
	bool v4;

	/* Parsed as cidr_list_match() parses it, a zone and all. */
	if (addr == NULL || cidr_addr(addr, a, &v4) < 0)
		return false;
	return memcmp(a, one, 16) == 0 ||
	    (memcmp(a, cidr_v4_prefix, 12) == 0 && a[12] == 127);
}

void
cidr_list_clear(struct cidr_list *l)
{
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

const char *
cidr_client_key(const char *addr, unsigned v6_prefix, char *out)
{
	unsigned char a[16];
	const char *zone;
	size_t len;

	if (addr == NULL)
		addr = "";
	/* IPv4 text, the common case, is its own key: no parse. */
	if (strchr(addr, ':') != NULL && cidr_addr6(addr, a, &zone) == 0) {
		if (memcmp(a, cidr_v4_prefix, 12) == 0 ||
		    memcmp(a, cidr_nat64_prefix, 12) == 0) {
			inet_ntop(AF_INET, a + 12, out, CIDR_KEY_MAX);
			return out;
		}
		for (unsigned i = 0; i < 16; i++) {
			unsigned kept =
			    v6_prefix > i * 8 ? v6_prefix - i * 8 : 0;

			if (kept < 8)
				a[i] &= (unsigned char)(0xff00u >> kept);
		}
		/* Written as inet_ntop() writes it, however it came. */
		inet_ntop(AF_INET6, a, out, CIDR_KEY_MAX);
		len = strlen(out);
		if (v6_prefix < 128)
			len += (size_t)snprintf(
			    out + len, CIDR_KEY_MAX - len, "/%u", v6_prefix);
		/*
		 * A link's network is that link's: fe80::/64 on another is
		 * another network (the zone cut to fit, a front's interface
		 * name or number).
		 */
		if (zone != NULL)
			snprintf(out + len, CIDR_KEY_MAX - len, "%%%s", zone);
		return out;
	}
	len = strlen(addr);
	if (len >= CIDR_KEY_MAX)
		len = CIDR_KEY_MAX - 1;
	memcpy(out, addr, len);
	out[len] = '\0';
	return out;
}
