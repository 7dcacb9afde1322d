/* server_params: see server_params.h. */
#include "server_params.h"

#include <fcgiapp.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "util.h"

/* Parameters server_params_lookup() looks up at once. */
#define SERVER_PARAMS_MAX 16
/* Its chains by name length: 0 to 31, and longer. */
#define SERVER_PARAMS_LEN 33
#define SERVER_PARAMS_NONE 0xff

struct server_param_want {
	const char *name;
	const char **value;
};

/*
 * Look up n parameters in one pass over a request's (FCGX_GetParam()
 * scans them all for each name: a dozen scans of ~25 per request behind
 * nginx).  The first of several with one name wins, as there.  Values
 * not found are NULL.
 */
static void
server_params_lookup(
    char **envp, const struct server_param_want *want, size_t n)
{
	/*
	 * The wants chained by name length (first[k], then next[]), so that
	 * a parameter is compared with those of its length only: a request
	 * carries two dozen parameters.  Longer names share the last chain.
	 */
	unsigned char first[SERVER_PARAMS_LEN], next[SERVER_PARAMS_MAX];
	size_t len[SERVER_PARAMS_MAX], left;

	if (n > SERVER_PARAMS_MAX)
		n = SERVER_PARAMS_MAX;
	left = n;
	memset(first, SERVER_PARAMS_NONE, sizeof(first));
	for (size_t i = n; i-- > 0;) {
		size_t k;

		*want[i].value = NULL;
		len[i] = want[i].name != NULL ? strlen(want[i].name) : 0;
		k = len[i] < SERVER_PARAMS_LEN ? len[i] : SERVER_PARAMS_LEN - 1;
		next[i] = first[k];
		first[k] = (unsigned char)i;
	}
	for (char **e = envp; e != NULL && *e != NULL && left > 0; e++) {
		const char *eq = strchr(*e, '=');
		size_t k, chain;

		if (eq == NULL || eq == *e)
			continue;
		k = (size_t)(eq - *e);
		chain = k < SERVER_PARAMS_LEN ? k : SERVER_PARAMS_LEN - 1;
		/* No break: two wants may name one parameter. */
		for (unsigned i = first[chain]; i != SERVER_PARAMS_NONE;
		     i = next[i]) {
			if (len[i] == k && *want[i].value == NULL &&
			    memcmp(*e, want[i].name, k) == 0) {
				*want[i].value = eq + 1;
				left--;
			}
		}
	}
}

void
server_params_to_request(char **envp, const char *claim_param,
    struct api_request *ar, struct buf *uri)
{
	const char *p;

	const char *https = NULL;
	/*
	 * The claim is never an HTTP_ parameter: those come from the client,
	 * and fronts map several spellings of a header name onto one.
	 */
	const struct server_param_want want[] = {
	    {"REQUEST_METHOD", &ar->method},
	    {"REQUEST_URI", &ar->uri},
	    {"CONTENT_TYPE", &ar->content_type},
	    {"HTTP_ORIGIN", &ar->origin},
	    {"HTTP_LAST_EVENT_ID", &ar->last_event_id},
	    {"HTTP_AUTHORIZATION", &ar->authorization},
	    {"HTTP_COOKIE", &ar->cookie},
	    {"REMOTE_ADDR", &ar->remote_addr},
	    {"HTTP_SEC_FETCH_SITE", &ar->sec_fetch_site},
	    {"HTTP_HOST", &ar->host},
	    {"HTTPS", &https},
	    {claim_param, &ar->claim},
	};

	server_params_lookup(envp, want, sizeof(want) / sizeof(want[0]));
	ar->https = (p = https) != NULL && strcasecmp(p, "on") == 0;
	if (ar->uri == NULL) {
		/* Fronts that send no REQUEST_URI: rebuild it. */
		const char *sn = FCGX_GetParam("SCRIPT_NAME", envp);
		const char *pi = FCGX_GetParam("PATH_INFO", envp);
		const char *qs = FCGX_GetParam("QUERY_STRING", envp);

		buf_printf(uri, "%s%s%s%s", sn ? sn : "", pi ? pi : "",
		    qs && *qs ? "?" : "", qs && *qs ? qs : "");
		ar->uri = uri->data;
	}
}
