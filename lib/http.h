/*
 * http.h - a small HTTP client on libcurl for JSON APIs.
 *
 * One struct http_client wraps one libcurl easy handle and makes one
 * request at a time, through a pool of connections (struct http_pool) it
 * may share with other clients, so connections and TLS sessions are kept
 * alive between requests and between clients.
 * TLS peers and host names are always verified; HTTP/2 is used where the
 * server offers it over TLS; only http and https URLs are followed, and
 * redirects are not. Proxies come from the environment as libcurl reads
 * them (http_proxy, https_proxy, no_proxy, ...).
 *
 * A bearer key given to http_post_json() travels only in the Authorization
 * header: it is never part of an error message or of the trace, which
 * shows "Authorization: [redacted]".
 *
 * Two hooks sit at the request/response boundary, for tests and
 * rehearsals: a cassette (cassette.h) serves recorded replies instead of
 * the network or records them, and faults (faults.h) answer some
 * requests with an error, a timeout or a cut reply instead.
 */
#ifndef ORCH_HTTP_H
#define ORCH_HTTP_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* How a request ended when no complete response came back. */
enum http_failure {
	HTTP_FAIL_NONE = 0,    /* a complete response: look at status */
	HTTP_FAIL_CONNECT,     /* could not resolve or connect */
	HTTP_FAIL_TIMEOUT,     /* the connect or total timeout passed */
	HTTP_FAIL_TRANSFER,    /* the connection broke: a body cut short, ... */
	HTTP_FAIL_TOO_BIG,     /* the body passed max_response: aborted */
	HTTP_FAIL_OTHER,       /* anything else (bad URL, TLS failure, ...) */
	HTTP_FAIL_CASSETTE,    /* a replay has no recording of the request, or
				  the cassette cannot be written: stop */
};

struct cassette;
struct faults;

/* A line of trace (verbose) output, without a newline. */
typedef void http_trace_fn(void *arg, const char *line);

/*
 * The connections many clients share: a libcurl multi handle. Requests on
 * one pool reuse its connections (kept alive, and multiplexed over HTTP/2
 * where a server offers it over TLS) and read the CA certificates once.
 * One pool serves one thread.
 */
struct http_pool {
	void *multi;             /* owned CURLM * */
	void *waitfds;           /* owned: room for http_pool_wait()'s fds */
	size_t waitfds_alloc;    /* entries allocated in waitfds */
};

/* Set up P: 0, or -1 with ERR (70) when libcurl cannot start. */
int http_pool_init(struct http_pool *p, struct orch_error *err);
/* Release P: every client on it must be released first. */
void http_pool_release(struct http_pool *p);

/*
 * Wait until one of P's requests can move on, one of the NFDS descriptors
 * FDS is ready (their revents set, as poll() does), or TIMEOUT_MS passes
 * (-1: no limit but libcurl's own timers). 0, or -1 with errno (EINTR
 * included) when the wait failed.
 */
int http_pool_wait(struct http_pool *p, struct pollfd *fds, int nfds, int timeout_ms);

/*
 * Move every request of P on as far as it goes without waiting; those
 * that ended are done (http_post_done()).
 */
void http_pool_work(struct http_pool *p);

struct http_flight;

struct http_client {
	void *curl;              /* owned CURL *, reused across requests */
	struct http_pool *pool;  /* borrowed, or &own: where requests go */
	struct http_pool own;    /* the pool of a client set up without one */
	struct http_flight *flight; /* owned: the request under way, or NULL */
	int64_t connect_timeout_ms; /* 0: libcurl's default */
	size_t max_response;     /* cap on a response body, in bytes */
	const char *ca_file;     /* borrowed: the CAs to trust instead of the
				    system's, or NULL */
	http_trace_fn *trace;    /* called with trace lines, or NULL */
	void *trace_arg;         /* borrowed; handed to trace */
	struct cassette *cassette; /* borrowed: record or replay, or NULL */
	struct faults *faults;   /* borrowed: faults to inject, or NULL */
};

struct http_header {
	char *name;  /* owned; as the server sent it */
	char *value; /* owned; white space trimmed */
};

struct http_response {
	long status;                 /* HTTP status; 0 without a response */
	enum http_failure failure;   /* HTTP_FAIL_NONE for a full response */
	char *body;                  /* owned; NUL-terminated; may be partial
					on failure */
	size_t len;                  /* bytes in body */
	struct http_header *headers; /* owned; of the last response */
	size_t n_headers;            /* entries in headers */
	int64_t latency_ms;          /* from sending to the end */
};

#define HTTP_RESPONSE_INIT { 0, HTTP_FAIL_NONE, NULL, 0, NULL, 0, 0 }

/*
 * Set up C, on POOL (borrowed; it outlives C) or, when POOL is NULL, on a
 * pool of its own. Returns 0, or -1 with ERR (70) when libcurl cannot
 * start. MAX_RESPONSE caps every response body.
 */
int http_client_init(struct http_client *c, struct http_pool *pool, size_t max_response,
		     struct orch_error *err);
void http_client_release(struct http_client *c);

/*
 * POST BODY (LEN bytes of JSON) to URL with "Authorization: Bearer KEY"
 * (none when KEY is NULL), giving up after TIMEOUT_MS in total.
 * Returns 0 when a complete response came back, whatever its status, with
 * RESP filled; -1 otherwise, with RESP->failure saying why, ERR (69) a
 * message such as "timed out after 500 ms" or "response larger than
 * 8388608 bytes", and RESP->status set if the headers had arrived.
 * RESP is released first, so one may be reused.
 *
 * With C->faults, a drawn fault answers instead (or cuts the reply).
 * With C->cassette replaying, a recording is served instead, and none is
 * -1 with RESP->failure HTTP_FAIL_CASSETTE and ERR (69) naming the file;
 * recording, what came back is appended (a write error is
 * HTTP_FAIL_CASSETTE and 70).
 *
 * http_post_json() waits for the answer. The same request without
 * waiting: http_post_start() sends it through C's pool (URL, KEY, BODY
 * and RESP borrowed until it is finished); the pool's owner drives it
 * (http_pool_wait(), http_pool_work()) until http_post_done(); then
 * http_post_finish() returns what http_post_json() would have, and C can
 * send the next. http_post_abort() drops a request under way.
 */
int http_post_json(struct http_client *c, const char *url, const char *key,
		   const char *body, size_t len, int64_t timeout_ms,
		   struct http_response *resp, struct orch_error *err);
void http_post_start(struct http_client *c, const char *url, const char *key,
		     const char *body, size_t len, int64_t timeout_ms,
		     struct http_response *resp);
int http_post_done(const struct http_client *c);
int http_post_finish(struct http_client *c, struct orch_error *err);
void http_post_abort(struct http_client *c);

/* The value of header NAME (any case; borrowed), or NULL. */
const char *http_response_header(const struct http_response *resp,
				 const char *name);

void http_response_release(struct http_response *resp);

/* "host" or "host:port" of URL (new string), or NULL if it has none. */
char *http_url_host(const char *url);

/* The path of URL, "/v1/chat/completions" (new string), or NULL. */
char *http_url_path(const char *url);

#endif
