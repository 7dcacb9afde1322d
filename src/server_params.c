/* server_params: see server_params.h. */
#include "server_params.h"

#include <fcgiapp.h>
#include <pthread.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "util.h"

/* Chains, by a name's length and last character (server_param_chain()). */
#define SERVER_PARAMS_CHAINS 64
#define SERVER_PARAMS_NONE 0xff

/* The parameters read from every request (the claim's name is the caller's). */
enum server_param {
	SP_METHOD,
	SP_URI,
	SP_CONTENT_TYPE,
	SP_CONTENT_LENGTH,
	SP_ORIGIN,
	SP_LAST_EVENT_ID,
	SP_AUTHORIZATION,
	SP_COOKIE,
	SP_REMOTE_ADDR,
	SP_SEC_FETCH_SITE,
	SP_HOST,
	SP_HTTPS,
	SP_ACCEPT,
	SP__N
};

static const char *const server_param_names[SP__N] = {
    [SP_METHOD] = "REQUEST_METHOD",
    [SP_URI] = "REQUEST_URI",
    [SP_CONTENT_TYPE] = "CONTENT_TYPE",
    [SP_CONTENT_LENGTH] = "CONTENT_LENGTH",
    [SP_ORIGIN] = "HTTP_ORIGIN",
    [SP_LAST_EVENT_ID] = "HTTP_LAST_EVENT_ID",
    [SP_AUTHORIZATION] = "HTTP_AUTHORIZATION",
    [SP_COOKIE] = "HTTP_COOKIE",
    [SP_REMOTE_ADDR] = "REMOTE_ADDR",
    [SP_SEC_FETCH_SITE] = "HTTP_SEC_FETCH_SITE",
    [SP_HOST] = "HTTP_HOST",
    [SP_HTTPS] = "HTTPS",
    [SP_ACCEPT] = "HTTP_ACCEPT",
};

/*
 * The names' lengths, and the names chained by their length and last
 * character (server_param_first[], then server_param_next[]), so that a
 * request's parameter is compared with those alone: made once, they are
 * the same for every request.  By length alone, five names of 11
 * characters shared a chain, and a request's REQUEST_URI or REMOTE_ADDR
 * was compared with several of them.
 */
static size_t server_param_len[SP__N];
static unsigned char server_param_first[SERVER_PARAMS_CHAINS];
static unsigned char server_param_next[SP__N];
static pthread_once_t server_param_chains_once = PTHREAD_ONCE_INIT;

/*
 * The chain of a name of len (> 0) characters.  Our names of one length
 * end in distinct letters, so none of them share a chain: a chain holds
 * one name, or those of different lengths.
 */
static size_t
server_param_chain(const char *name, size_t len)
{
	return (len * 4 + (unsigned char)name[len - 1]) % SERVER_PARAMS_CHAINS;
}

static void
server_param_chains(void)
{
	memset(
	    server_param_first, SERVER_PARAMS_NONE, sizeof(server_param_first));
	for (size_t i = SP__N; i-- > 0;) {
		size_t k;

		server_param_len[i] = strlen(server_param_names[i]);
		k = server_param_chain(
		    server_param_names[i], server_param_len[i]);

		server_param_next[i] = server_param_first[k];
		server_param_first[k] = (unsigned char)i;
	}
}

/*
 * Look up the parameters of server_param_names into v, and the one named
 * claim_param (may be NULL) into *claim, in one pass over a request's
 * (FCGX_GetParam() scans them all for each name: a dozen scans of ~25 per
 * request behind nginx).  The first of several with one name wins, as
 * there.  Values not found are NULL.
 */
static void
server_params_lookup(char **envp, const char *claim_param, const char *v[SP__N],
    const char **claim)
{
	size_t claim_len = claim_param != NULL ? strlen(claim_param) : 0;
	size_t left = SP__N + (claim_param != NULL);

	pthread_once(&server_param_chains_once, server_param_chains);
	memset(v, 0, SP__N * sizeof(*v));
	*claim = NULL;
	for (char **e = envp; e != NULL && *e != NULL && left > 0; e++) {
		const char *eq = strchr(*e, '=');
		size_t k;

		if (eq == NULL || eq == *e)
			continue;
		k = (size_t)(eq - *e);
		/* No continue: the claim may be named like another. */
		if (k == claim_len && *claim == NULL &&
		    memcmp(*e, claim_param, k) == 0) {
			*claim = eq + 1;
			left--;
		}
		for (unsigned i = server_param_first[server_param_chain(*e, k)];
		     i != SERVER_PARAMS_NONE; i = server_param_next[i]) {
			if (server_param_len[i] == k && v[i] == NULL &&
			    memcmp(*e, server_param_names[i], k) == 0) {
				v[i] = eq + 1;
				left--;
				break; /* the names are distinct */
			}
		}
	}
}

void
server_params_to_request(char **envp, const char *claim_param,
    struct api_request *ar, struct buf *uri)
{
	const char *v[SP__N];

	/*
	 * The claim is never an HTTP_ parameter: those come from the client,
	 * and fronts map several spellings of a header name onto one.
	 */
	server_params_lookup(envp, claim_param, v, &ar->claim);
	ar->method = v[SP_METHOD];
	ar->uri = v[SP_URI];
	ar->content_type = v[SP_CONTENT_TYPE];
	ar->content_length = v[SP_CONTENT_LENGTH];
	ar->origin = v[SP_ORIGIN];
	ar->last_event_id = v[SP_LAST_EVENT_ID];
	ar->authorization = v[SP_AUTHORIZATION];
	ar->cookie = v[SP_COOKIE];
	ar->remote_addr = v[SP_REMOTE_ADDR];
	ar->sec_fetch_site = v[SP_SEC_FETCH_SITE];
	ar->accept = v[SP_ACCEPT];
	ar->host = v[SP_HOST];
	ar->https = v[SP_HTTPS] != NULL && strcasecmp(v[SP_HTTPS], "on") == 0;
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
