/*
 * server_params: a request's FastCGI parameters, as libfcgi keeps them
 * ("name=value" strings), mapped onto an api_request.  Pure: no I/O, no
 * state; the server's (server.c) and a test's or fuzz driver's alike.
 */
#ifndef BEEP_SERVER_PARAMS_H
#define BEEP_SERVER_PARAMS_H

struct api_request;
struct buf;

/*
 * Set ar's method, uri, content_type, content_length, origin, last_event_id,
 * authorization, cookie, remote_addr, sec_fetch_site, host and https from
 * envp (NULL-terminated, or NULL), and its claim from the parameter named
 * claim_param (BEEP_AUTH_PARAM; NULL: none).  The first of several
 * parameters with one name wins; what is missing is NULL (https: false).
 * Without REQUEST_URI, the uri is rebuilt from SCRIPT_NAME, PATH_INFO and
 * QUERY_STRING into uri (empty on entry; the caller frees it).  The
 * strings point into envp and uri, which must outlive ar's use.
 */
void server_params_to_request(char **envp, const char *claim_param,
    struct api_request *ar, struct buf *uri);

#endif
