/* server_params: see server_params.h. */
#include "server_params.h"

#include <fcgiapp.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "util.h"

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
	SP_CONTENT_ENCODING,
	SP__N
};

/* Whether s, of len characters, is the name lit (a string literal). */
#define SERVER_PARAM_IS(s, len, lit)                                           \
	((len) == sizeof(lit) - 1 && memcmp(s, lit, sizeof(lit) - 1) == 0)

/*
 * Which of ours the parameter named s (len characters, not terminated:
 * a request's "name=value" up to its '=') is, or SP__N.  A switch on the
 * length, then the names of that length compared whole: with the length
 * a constant, each memcmp() compiles to a word or three compared in
 * place, where a table of names would take a call per parameter.  The
 * length test in SERVER_PARAM_IS() costs nothing (the case fixes it): a
 * name put under the wrong case would never match, not be compared past
 * the parameter's end.
 */
static enum server_param
server_param_find(const char *s, size_t len)
{
	switch (len) {
	case 5:
		if (SERVER_PARAM_IS(s, len, "HTTPS"))
			return SP_HTTPS;
		break;
	case 9:
		if (SERVER_PARAM_IS(s, len, "HTTP_HOST"))
			return SP_HOST;
		break;
	case 11:
		if (SERVER_PARAM_IS(s, len, "REQUEST_URI"))
			return SP_URI;
		if (SERVER_PARAM_IS(s, len, "REMOTE_ADDR"))
			return SP_REMOTE_ADDR;
		if (SERVER_PARAM_IS(s, len, "HTTP_ORIGIN"))
			return SP_ORIGIN;
		if (SERVER_PARAM_IS(s, len, "HTTP_COOKIE"))
			return SP_COOKIE;
		if (SERVER_PARAM_IS(s, len, "HTTP_ACCEPT"))
			return SP_ACCEPT;
		break;
	case 12:
		if (SERVER_PARAM_IS(s, len, "CONTENT_TYPE"))
			return SP_CONTENT_TYPE;
		break;
	case 14:
		if (SERVER_PARAM_IS(s, len, "REQUEST_METHOD"))
			return SP_METHOD;
		if (SERVER_PARAM_IS(s, len, "CONTENT_LENGTH"))
			return SP_CONTENT_LENGTH;
		break;
	case 18:
		if (SERVER_PARAM_IS(s, len, "HTTP_LAST_EVENT_ID"))
			return SP_LAST_EVENT_ID;
		if (SERVER_PARAM_IS(s, len, "HTTP_AUTHORIZATION"))
			return SP_AUTHORIZATION;
		break;
	case 19:
		if (SERVER_PARAM_IS(s, len, "HTTP_SEC_FETCH_SITE"))
			return SP_SEC_FETCH_SITE;
		break;
	case 21:
		if (SERVER_PARAM_IS(s, len, "HTTP_CONTENT_ENCODING"))
			return SP_CONTENT_ENCODING;
		break;
	}
	return SP__N;
}

/*
 * Look up our parameters (server_param_find()) into v, and the one named
 * claim_param (may be NULL) into *claim, in one pass over a request's
 * (FCGX_GetParam() scans them all for each name: a dozen scans per
 * request).  The first of several with one name wins, as there.  Values
 * not found are NULL.
 */
static void
server_params_lookup(char **envp, const char *claim_param, const char *v[SP__N],
    const char **claim)
{
	size_t claim_len = claim_param != NULL ? strlen(claim_param) : 0;

	memset(v, 0, SP__N * sizeof(*v));
	*claim = NULL;
	if (envp == NULL)
		return;
	for (char **e = envp; *e != NULL; e++) {
		const char *eq = strchr(*e, '=');
		enum server_param i;
		size_t k;

		if (eq == NULL || eq == *e)
			continue;
		k = (size_t)(eq - *e);
		/* Not else: the claim may be named like one of ours. */
		if (k == claim_len && *claim == NULL &&
		    memcmp(*e, claim_param, k) == 0)
			*claim = eq + 1;
		i = server_param_find(*e, k);
		if (i != SP__N && v[i] == NULL)
			v[i] = eq + 1;
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
	ar->content_encoding = v[SP_CONTENT_ENCODING];
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
