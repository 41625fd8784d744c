#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "cassette.h"
#include "faults.h"
#include "http.h"
#include "orch.h"
#include "xalloc.h"
#include "banned.h"

/* What the libcurl callbacks fill during one transfer. */
struct transfer {
	struct http_response *resp; /* borrowed */
	size_t max;                 /* body cap */
	size_t cap;                 /* bytes allocated in resp->body */
	int too_big;                /* the cap was passed */
};

/* A request from http_post_start() to http_post_finish(). */
struct http_flight {
	const char *url;            /* borrowed, and the three below */
	const char *key;
	const char *body;
	size_t len;
	int64_t timeout_ms;
	struct transfer t;          /* resp is the caller's */
	struct curl_slist *headers; /* owned; holds the Authorization line */
	char errbuf[CURL_ERROR_SIZE];
	int64_t start;              /* monotonic ms it was sent */
	int on_pool;                /* added to the pool's multi handle */
	int done;                   /* the transfer ended, or never began */
	CURLcode result;            /* how the transfer ended */
	int answered;               /* answered without the network (a fault,
				       a recording, a failure to start): rc and
				       err below are the answer */
	int rc;
	struct orch_error err;
	const struct fault *ft;     /* the fault drawn, or NULL */
	char rkey[CASSETTE_KEY_LEN + 1]; /* the cassette's key, "" without */
};

int http_pool_init(struct http_pool *p, struct orch_error *err)
{
	memset(p, 0, sizeof(*p));
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return orch_error_set(err, ORCH_EX_SOFTWARE, "cannot initialise libcurl");
	if (!(p->multi = curl_multi_init())) {
		curl_global_cleanup();
		return orch_error_set(err, ORCH_EX_SOFTWARE, "cannot initialise libcurl");
	}
	/* Requests that start together wait for the first connection to
	 * know whether it multiplexes (CURLOPT_PIPEWAIT), and HTTP/2 ones
	 * share it: the default, said here because the pool relies on it. */
	curl_multi_setopt(p->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
	return 0;
}

void http_pool_release(struct http_pool *p)
{
	if (!p->multi)
		return;
	curl_multi_cleanup(p->multi);
	free(p->waitfds);
	memset(p, 0, sizeof(*p));
	curl_global_cleanup();
}

int http_pool_wait(struct http_pool *p, struct pollfd *fds, int nfds, int timeout_ms)
{
	struct curl_waitfd *w;
	CURLMcode rc;
	int i;

	if ((size_t)nfds > p->waitfds_alloc) {
		p->waitfds = xreallocarray(p->waitfds, (size_t)nfds, sizeof(*w));
		p->waitfds_alloc = (size_t)nfds;
	}
	w = p->waitfds;
	for (i = 0; i < nfds; i++) {
		w[i].fd = fds[i].fd;
		w[i].events = (short)(fds[i].events & (POLLIN | POLLPRI | POLLOUT));
		w[i].revents = 0;
	}
	/* curl_multi_poll, not _wait: it waits even when no request has a
	 * socket yet (one resolving, one between retries). */
	rc = curl_multi_poll(p->multi, w, (unsigned)nfds, timeout_ms < 0 ? 60000 : timeout_ms,
			     NULL);
	for (i = 0; i < nfds; i++)
		fds[i].revents = w[i].revents;
	if (rc != CURLM_OK) {
		errno = rc == CURLM_OUT_OF_MEMORY ? ENOMEM : EIO;
		return -1;
	}
	return 0;
}

void http_pool_work(struct http_pool *p)
{
	struct http_flight *f;
	CURLMsg *msg;
	int running, left;

	curl_multi_perform(p->multi, &running);
	while ((msg = curl_multi_info_read(p->multi, &left))) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		f = NULL;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&f);
		if (f) {
			f->result = msg->data.result;
			f->done = 1;
		}
		curl_multi_remove_handle(p->multi, msg->easy_handle);
		if (f)
			f->on_pool = 0;
	}
}

int http_client_init(struct http_client *c, struct http_pool *pool, size_t max_response,
		     struct orch_error *err)
{
	memset(c, 0, sizeof(*c));
	if (!pool) {
		if (http_pool_init(&c->own, err) != 0)
			return -1;
		pool = &c->own;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		http_pool_release(&c->own);
		return orch_error_set(err, ORCH_EX_SOFTWARE, "cannot initialise libcurl");
	}
	if (!(c->curl = curl_easy_init())) {
		curl_global_cleanup();
		http_pool_release(&c->own);
		return orch_error_set(err, ORCH_EX_SOFTWARE, "cannot initialise libcurl");
	}
	c->pool = pool;
	c->max_response = max_response;
	return 0;
}

void http_client_release(struct http_client *c)
{
	if (!c->curl)
		return;
	http_post_abort(c);
	curl_easy_cleanup(c->curl);
	c->curl = NULL;
	curl_global_cleanup();
	http_pool_release(&c->own);
}

void http_response_release(struct http_response *resp)
{
	size_t i;

	for (i = 0; i < resp->n_headers; i++) {
		free(resp->headers[i].name);
		free(resp->headers[i].value);
	}
	free(resp->headers);
	free(resp->body);
	memset(resp, 0, sizeof(*resp));
}

const char *http_response_header(const struct http_response *resp,
				 const char *name)
{
	size_t i;

	for (i = resp->n_headers; i-- > 0;)
		if (strcasecmp(resp->headers[i].name, name) == 0)
			return resp->headers[i].value;
	return NULL;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
	struct transfer *t = arg;
	struct http_response *r = t->resp;

	n *= size;
	if (n > t->max - r->len) {
		t->too_big = 1;
		return 0;
	}
	if (r->len + n + 1 > t->cap) {
		while (r->len + n + 1 > t->cap)
			t->cap = t->cap ? t->cap * 2 : 16384;
		r->body = xreallocarray(r->body, t->cap, 1);
	}
	memcpy(r->body + r->len, data, n);
	r->len += n;
	r->body[r->len] = '\0';
	return n;
}

static void drop_headers(struct http_response *r)
{
	size_t i;

	for (i = 0; i < r->n_headers; i++) {
		free(r->headers[i].name);
		free(r->headers[i].value);
	}
	r->n_headers = 0;
}

/* Keep the headers of the last response only (after a 100 Continue, ...). */
static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
	struct transfer *t = arg;
	struct http_response *r = t->resp;
	size_t len = size * n, name_len, i;
	const char *colon;

	if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) {
		drop_headers(r);
		return len;
	}
	if (!(colon = memchr(data, ':', len)) || colon == data)
		return len;
	name_len = (size_t)(colon - data);
	i = name_len + 1;
	while (i < len && (data[i] == ' ' || data[i] == '\t'))
		i++;
	while (len > i && isspace((unsigned char)data[len - 1]))
		len--;
	r->headers = xreallocarray(r->headers, r->n_headers + 1, sizeof(*r->headers));
	r->headers[r->n_headers].name = xstrndup(data, name_len);
	r->headers[r->n_headers].value = xstrndup(data + i, len - i);
	r->n_headers++;
	return size * n;
}

static void trace(struct http_client *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void trace(struct http_client *c, const char *fmt, ...)
{
	va_list ap;
	char *line;

	if (!c->trace)
		return;
	va_start(ap, fmt);
	line = xvasprintf(fmt, ap);
	va_end(ap);
	c->trace(c->trace_arg, line);
	free(line);
}

static void trace_response(struct http_client *c, const struct http_response *r)
{
	char *names = xstrdup(""), *next;
	size_t i;

	if (!c->trace)
		return;
	for (i = 0; i < r->n_headers; i++) {
		next = xasprintf("%s%s%s", names, i ? ", " : "", r->headers[i].name);
		free(names);
		names = next;
	}
	trace(c, "HTTP %ld in %lld ms, %zu bytes; headers: %s", r->status,
	      (long long)r->latency_ms, r->len, r->n_headers ? names : "none");
	free(names);
}

static enum http_failure classify(CURLcode rc, const struct transfer *t)
{
	switch (rc) {
	case CURLE_OK:
		return HTTP_FAIL_NONE;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_CONNECT:
		return HTTP_FAIL_CONNECT;
	case CURLE_OPERATION_TIMEDOUT:
		return HTTP_FAIL_TIMEOUT;
	case CURLE_FILESIZE_EXCEEDED:
		return HTTP_FAIL_TOO_BIG;
	case CURLE_WRITE_ERROR:
		return t->too_big ? HTTP_FAIL_TOO_BIG : HTTP_FAIL_OTHER;
	case CURLE_PARTIAL_FILE:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return HTTP_FAIL_TRANSFER;
	default:
		return HTTP_FAIL_OTHER;
	}
}

/*
 * ERR for the failure of R (libcurl's RC and ERRBUF), whose request had
 * TIMEOUT_MS in all, and CONNECT_MS to connect when it timed out before
 * it was connected (TLS handshake included), else -1.
 */
static int fail(CURLcode rc, const char *errbuf, int64_t timeout_ms, int64_t connect_ms,
		const struct http_response *r, size_t max, struct orch_error *err)
{
	switch (r->failure) {
	case HTTP_FAIL_TIMEOUT:
		if (connect_ms >= 0)
			return orch_error_set(err, ORCH_EX_UNAVAILABLE, "could not connect within"
					      " %lld ms", (long long)connect_ms);
		return orch_error_set(err, ORCH_EX_UNAVAILABLE, "timed out after %lld ms",
				      (long long)timeout_ms);
	case HTTP_FAIL_TOO_BIG:
		return orch_error_set(err, ORCH_EX_UNAVAILABLE,
				      "response larger than %zu bytes", max);
	case HTTP_FAIL_TRANSFER:
		if (rc == CURLE_PARTIAL_FILE)
			return orch_error_set(err, ORCH_EX_UNAVAILABLE,
					      "connection closed after %zu bytes of the response",
					      r->len);
		break;
	default:
		break;
	}
	return orch_error_set(err, ORCH_EX_UNAVAILABLE, "%s",
			      errbuf[0] ? errbuf : curl_easy_strerror(rc));
}

/* Free a header list, wiped first: it holds a copy of the Authorization line. */
static void free_headers(struct curl_slist *headers)
{
	struct curl_slist *l;

	for (l = headers; l; l = l->next)
		explicit_bzero(l->data, strlen(l->data));
	curl_slist_free_all(headers);
}

/* Append LINE to *LIST; when libcurl cannot, free the whole list: -1. */
static int add_header(struct curl_slist **list, const char *line)
{
	struct curl_slist *grown = curl_slist_append(*list, line);

	if (!grown) {
		free_headers(*list);
		*list = NULL;
		return -1;
	}
	*list = grown;
	return 0;
}

/*
 * Put F's request on C's pool. A failure to set it up is F answered at
 * once.
 */
static void send_request(struct http_client *c, struct http_flight *f)
{
	CURL *h = c->curl;
	char *auth;
	int rc_header;

	if (add_header(&f->headers, "Content-Type: application/json") != 0 ||
	    add_header(&f->headers, "Accept: application/json") != 0 ||
	    add_header(&f->headers, "Expect:") != 0)
		goto out_of_memory;
	if (f->key) {
		auth = xasprintf("Authorization: Bearer %s", f->key);
		rc_header = add_header(&f->headers, auth);
		explicit_bzero(auth, strlen(auth));
		free(auth);
		if (rc_header != 0)
			goto out_of_memory;
	}

	curl_easy_setopt(h, CURLOPT_URL, f->url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	curl_easy_setopt(h, CURLOPT_PIPEWAIT, strncmp(f->url, "https:", 6) == 0 ? 1L : 0L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	if (c->ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(h, CURLOPT_USERAGENT, "orch/" ORCH_VERSION);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, f->headers);
	curl_easy_setopt(h, CURLOPT_POST, 1L);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, f->body);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)f->len);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)c->connect_timeout_ms);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(f->timeout_ms > 0 ? f->timeout_ms : 1));
	curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)c->max_response);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &f->t);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, &f->t);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, f->errbuf);
	curl_easy_setopt(h, CURLOPT_PRIVATE, (void *)f);

	trace(c, "POST %s (timeout %lld ms, %zu bytes)", f->url, (long long)f->timeout_ms,
	      f->len);
	trace(c, "request headers: Content-Type, Accept%s",
	      f->key ? ", Authorization: [redacted]" : "");
	f->start = orch_mono_ms();
	if (curl_multi_add_handle(c->pool->multi, h) != CURLM_OK)
		goto out_of_memory;
	f->on_pool = 1;
	return;
out_of_memory:
	f->answered = f->done = 1;
	f->rc = orch_error_set(&f->err, ORCH_EX_SOFTWARE, "out of memory");
	f->t.resp->failure = HTTP_FAIL_OTHER;
}

/* What F's transfer came to, as perform's result: 0, or -1 with ERR. */
static int transfer_result(struct http_client *c, struct http_flight *f,
			   struct orch_error *err)
{
	struct http_response *resp = f->t.resp;
	CURL *h = c->curl;
	long status = 0;

	resp->latency_ms = orch_mono_ms() - f->start;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	resp->status = status;
	if (!resp->body)
		resp->body = xstrdup("");
	/* Unhook F's memory from the handle kept for the next request. */
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, NULL);
	curl_easy_setopt(h, CURLOPT_PRIVATE, NULL);

	resp->failure = classify(f->result, &f->t);
	if (resp->failure != HTTP_FAIL_NONE) {
		curl_off_t connected = 0;
		int64_t connect_ms = -1;

		/* Connected is when TLS is up too, for https. */
		curl_easy_getinfo(h, strncmp(f->url, "https:", 6) == 0 ? CURLINFO_APPCONNECT_TIME_T
				  : CURLINFO_CONNECT_TIME_T, &connected);
		if (connected == 0 && c->connect_timeout_ms > 0 &&
		    c->connect_timeout_ms < f->timeout_ms)
			connect_ms = c->connect_timeout_ms;
		fail(f->result, f->errbuf, f->timeout_ms, connect_ms, resp, c->max_response, err);
		trace(c, "failed after %lld ms: %s", (long long)resp->latency_ms,
		      err ? err->msg : "");
		return -1;
	}
	trace_response(c, resp);
	return 0;
}

/* Serve RKEY's recording from C's cassette: 1 with *RC, or 0 to send. */
static int replay(struct http_client *c, const char *rkey, struct http_response *resp,
		  int *rc, struct orch_error *err)
{
	struct cassette *k = c->cassette;

	if (!k || k->mode == CASSETTE_RECORD)
		return 0;
	if (cassette_play(k, rkey, resp, rc, err)) {
		trace(c, "cassette: replayed %.12s: HTTP %ld%s", rkey, resp->status,
		      resp->failure != HTTP_FAIL_NONE ? " (a failure)" : "");
		return 1;
	}
	if (k->mode == CASSETTE_RECORD_NEW)
		return 0;
	resp->failure = HTTP_FAIL_CASSETTE;
	resp->body = xstrdup("");
	*rc = orch_error_set(err, ORCH_EX_UNAVAILABLE, "no recording in cassette '%s' for"
			     " this request (key %.12s)", k->path, rkey);
	return 1;
}

static void flight_free(struct http_flight *f)
{
	if (!f)
		return;
	free_headers(f->headers);
	orch_error_release(&f->err);
	free(f);
}

void http_post_abort(struct http_client *c)
{
	struct http_flight *f = c->flight;

	if (!f)
		return;
	if (f->on_pool) {
		curl_multi_remove_handle(c->pool->multi, c->curl);
		curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, NULL);
		curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, NULL);
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, NULL);
		curl_easy_setopt(c->curl, CURLOPT_PRIVATE, NULL);
	}
	flight_free(f);
	c->flight = NULL;
}

void http_post_start(struct http_client *c, const char *url, const char *key,
		     const char *body, size_t len, int64_t timeout_ms,
		     struct http_response *resp)
{
	struct http_flight *f;
	char name[16];

	http_post_abort(c);
	http_response_release(resp);
	f = c->flight = xcalloc(1, sizeof(*f));
	f->url = url;
	f->key = key;
	f->body = body;
	f->len = len;
	f->timeout_ms = timeout_ms;
	f->t = (struct transfer){ resp, c->max_response, 0, 0 };
	if (c->cassette || c->faults) {
		cassette_key("POST", url, body, len, f->rkey, NULL);
		if (c->faults && (f->ft = faults_draw(c->faults, f->rkey))) {
			trace(c, "fault injected: %s", fault_name(f->ft, name));
			if (f->ft->kind != FAULT_CUT) {
				f->rc = faults_answer(c->faults, f->ft, timeout_ms, resp, &f->err);
				f->answered = f->done = 1;
				return;
			}
		}
		if (replay(c, f->rkey, resp, &f->rc, &f->err)) {
			f->answered = f->done = 1;
			return;
		}
	}
	send_request(c, f);
}

int http_post_done(const struct http_client *c)
{
	return !c->flight || c->flight->done;
}

int http_post_finish(struct http_client *c, struct orch_error *err)
{
	struct http_flight *f = c->flight;
	struct http_response *resp;
	struct orch_error rerr = ORCH_ERROR_INIT;
	int rc;

	if (!f)
		return orch_error_set(err, ORCH_EX_SOFTWARE, "no request to finish");
	resp = f->t.resp;
	if (f->answered) {
		rc = f->rc;
		if (rc != 0 && err)
			orch_error_set(err, f->err.status, "%s", f->err.msg);
	} else {
		rc = transfer_result(c, f, err);
		if (c->cassette &&
		    cassette_record(c->cassette, f->rkey, "POST", f->url, f->body, f->len, resp,
				    rc && err ? err->msg : NULL, f->key, &rerr) != 0) {
			resp->failure = HTTP_FAIL_CASSETTE;
			orch_error_set(err, rerr.status, "%s", rerr.msg);
			orch_error_release(&rerr);
			rc = -1;
		} else if (c->cassette) {
			trace(c, "cassette: recorded %.12s", f->rkey);
		}
	}
	/* A cut is drawn for the network's or a recording's reply. */
	if (f->ft && f->ft->kind == FAULT_CUT && rc == 0)
		rc = faults_cut(resp, err);
	flight_free(f);
	c->flight = NULL;
	return rc;
}

int http_post_json(struct http_client *c, const char *url, const char *key,
		   const char *body, size_t len, int64_t timeout_ms,
		   struct http_response *resp, struct orch_error *err)
{
	http_post_start(c, url, key, body, len, timeout_ms, resp);
	while (!http_post_done(c)) {
		if (http_pool_wait(c->pool, NULL, 0, -1) != 0 && errno != EINTR)
			break;
		http_pool_work(c->pool);
	}
	if (!http_post_done(c)) {
		http_post_abort(c);
		resp->failure = HTTP_FAIL_OTHER;
		return orch_error_set(err, ORCH_EX_SOFTWARE, "waiting for the response: %s",
				      strerror(errno));
	}
	return http_post_finish(c, err);
}

char *http_url_path(const char *url)
{
	CURLU *u = curl_url();
	char *path = NULL, *out = NULL;

	if (!u)
		return NULL;
	if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_PATH, &path, 0) == CURLUE_OK)
		out = xstrdup(path);
	curl_free(path);
	curl_url_cleanup(u);
	return out;
}

char *http_url_host(const char *url)
{
	CURLU *u = curl_url();
	char *host = NULL, *port = NULL, *out = NULL;

	if (!u)
		return NULL;
	if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
		if (curl_url_get(u, CURLUPART_PORT, &port, 0) == CURLUE_OK)
			out = xasprintf("%s:%s", host, port);
		else
			out = xstrdup(host);
	}
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return out;
}
