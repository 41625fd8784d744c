#include <ctype.h>
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

int http_client_init(struct http_client *c, size_t max_response,
		     struct orch_error *err)
{
	memset(c, 0, sizeof(*c));
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return orch_error_set(err, ORCH_EX_SOFTWARE, "cannot initialise libcurl");
	if (!(c->curl = curl_easy_init())) {
		curl_global_cleanup();
		return orch_error_set(err, ORCH_EX_SOFTWARE, "cannot initialise libcurl");
	}
	c->max_response = max_response;
	return 0;
}

void http_client_release(struct http_client *c)
{
	if (!c->curl)
		return;
	curl_easy_cleanup(c->curl);
	c->curl = NULL;
	curl_global_cleanup();
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

static int fail(CURLcode rc, const char *errbuf, int64_t timeout_ms,
		const struct http_response *r, size_t max, struct orch_error *err)
{
	switch (r->failure) {
	case HTTP_FAIL_TIMEOUT:
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

static int perform(struct http_client *c, const char *url, const char *key,
		   const char *body, size_t len, int64_t timeout_ms,
		   struct http_response *resp, struct orch_error *err)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *headers = NULL;
	struct transfer t = { resp, c->max_response, 0, 0 };
	CURL *h = c->curl;
	CURLcode rc;
	int64_t start;
	char *auth;
	long status = 0;
	int rc_header;

	http_response_release(resp);
	if (add_header(&headers, "Content-Type: application/json") != 0 ||
	    add_header(&headers, "Accept: application/json") != 0 ||
	    add_header(&headers, "Expect:") != 0)
		return orch_error_set(err, ORCH_EX_SOFTWARE, "out of memory");
	if (key) {
		auth = xasprintf("Authorization: Bearer %s", key);
		rc_header = add_header(&headers, auth);
		explicit_bzero(auth, strlen(auth));
		free(auth);
		if (rc_header != 0)
			return orch_error_set(err, ORCH_EX_SOFTWARE, "out of memory");
	}

	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	if (c->ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(h, CURLOPT_USERAGENT, "orch/" ORCH_VERSION);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(h, CURLOPT_POST, 1L);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)c->connect_timeout_ms);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(timeout_ms > 0 ? timeout_ms : 1));
	curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)c->max_response);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &t);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, &t);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);

	trace(c, "POST %s (timeout %lld ms, %zu bytes)", url, (long long)timeout_ms, len);
	trace(c, "request headers: Content-Type, Accept%s",
	      key ? ", Authorization: [redacted]" : "");
	start = orch_mono_ms();
	rc = curl_easy_perform(h);
	resp->latency_ms = orch_mono_ms() - start;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	resp->status = status;
	if (!resp->body)
		resp->body = xstrdup("");
	/* Unhook our stack and heap from the handle kept for the next request. */
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, NULL);
	free_headers(headers);

	resp->failure = classify(rc, &t);
	if (resp->failure != HTTP_FAIL_NONE) {
		fail(rc, errbuf, timeout_ms, resp, c->max_response, err);
		trace(c, "failed after %lld ms: %s", (long long)resp->latency_ms, err ? err->msg : "");
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

int http_post_json(struct http_client *c, const char *url, const char *key,
		   const char *body, size_t len, int64_t timeout_ms,
		   struct http_response *resp, struct orch_error *err)
{
	const struct fault *ft = NULL;
	char rkey[CASSETTE_KEY_LEN + 1], name[16];
	struct orch_error rerr = ORCH_ERROR_INIT;
	int rc;

	if (!c->cassette && !c->faults)
		return perform(c, url, key, body, len, timeout_ms, resp, err);
	cassette_key("POST", url, body, len, rkey, NULL);
	if (c->faults && (ft = faults_draw(c->faults, rkey))) {
		trace(c, "fault injected: %s", fault_name(ft, name));
		if (ft->kind != FAULT_CUT)
			return faults_answer(c->faults, ft, timeout_ms, resp, err);
	}
	if (!replay(c, rkey, resp, &rc, err)) {
		rc = perform(c, url, key, body, len, timeout_ms, resp, err);
		if (c->cassette &&
		    cassette_record(c->cassette, rkey, "POST", url, body, len, resp,
				    rc && err ? err->msg : NULL, key, &rerr) != 0) {
			resp->failure = HTTP_FAIL_CASSETTE;
			orch_error_set(err, rerr.status, "%s", rerr.msg);
			orch_error_release(&rerr);
			return -1;
		}
		if (c->cassette)
			trace(c, "cassette: recorded %.12s", rkey);
	}
	if (ft && rc == 0)
		rc = faults_cut(resp, err);
	return rc;
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
