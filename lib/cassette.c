#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <unistd.h>

#include <jansson.h>

#include "cassette.h"
#include "orch.h"
#include "redact.h"
#include "sha256.h"
#include "strbuf.h"
#include "xalloc.h"
#include "banned.h"

#define MAX_HEADERS 64 /* headers kept of one recorded response */

static const char *const failure_names[] = {
	[HTTP_FAIL_NONE] = "none",
	[HTTP_FAIL_CONNECT] = "connect",
	[HTTP_FAIL_TIMEOUT] = "timeout",
	[HTTP_FAIL_TRANSFER] = "transfer",
	[HTTP_FAIL_TOO_BIG] = "too_big",
	[HTTP_FAIL_OTHER] = "other",
};

/* --- the key ----------------------------------------------------------- */

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int volatile_member(const char *name, const json_t *value)
{
	return json_is_number(value) &&
	       (strcmp(name, "now") == 0 || ends_with(name, "_at") || ends_with(name, "_time"));
}

static void scrub(json_t *v);

/* S with the JSON object it ends with scrubbed (new), or NULL if it has none. */
static json_t *scrub_string(const char *s, size_t len)
{
	const char *open = memchr(s, '{', len);
	json_t *doc, *out;
	char *dump, *text;

	if (!open || s[len - 1] != '}' ||
	    !(doc = json_loadb(open, len - (size_t)(open - s), 0, NULL)))
		return NULL;
	scrub(doc);
	dump = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(doc);
	if (!dump)
		return NULL;
	text = xasprintf("%.*s%s", (int)(open - s), s, dump);
	free(dump);
	out = json_string(text);
	free(text);
	return out;
}

/* V's string member or element M as a scrubbed document (new), or NULL. */
static json_t *embedded(const json_t *m)
{
	if (!json_is_string(m) || json_string_length(m) < 2)
		return NULL;
	return scrub_string(json_string_value(m), json_string_length(m));
}

static void scrub(json_t *v)
{
	const char *name;
	json_t *m, *fresh;
	void *tmp;
	size_t i;

	if (json_is_object(v)) {
		json_object_foreach_safe(v, tmp, name, m) {
			if (volatile_member(name, m))
				json_object_del(v, name);
			else if ((fresh = embedded(m)))
				json_object_set_new(v, name, fresh);
			else
				scrub(m);
		}
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, m) {
			if ((fresh = embedded(m)))
				json_array_set_new(v, i, fresh);
			else
				scrub(m);
		}
	}
}

void cassette_key(const char *method, const char *url, const char *body, size_t len,
		  char key[CASSETTE_KEY_LEN + 1], char **canon)
{
	json_t *doc = json_loadb(body, len, JSON_DECODE_ANY, NULL);
	char *path = http_url_path(url), *dump = NULL, *text;
	struct strbuf s = STRBUF_INIT;

	if (doc) {
		scrub(doc);
		dump = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
		json_decref(doc);
	}
	text = xasprintf("%s %s\n", method, path ? path : "/");
	strbuf_add(&s, text, strlen(text));
	if (dump)
		strbuf_add(&s, dump, strlen(dump));
	else
		strbuf_add(&s, body, len);
	sha256_hex(s.buf, s.len, key);
	if (canon)
		*canon = dump ? dump : xstrndup(body, len);
	else
		free(dump);
	free(s.buf);
	free(text);
	free(path);
}

/* --- reading ----------------------------------------------------------- */

static void entry_release(struct cassette_entry *e)
{
	http_response_release(&e->resp);
	free(e->error);
}

void cassette_free(struct cassette *c)
{
	size_t i;

	if (!c)
		return;
	for (i = 0; i < c->n; i++)
		entry_release(&c->v[i]);
	free(c->v);
	if (c->fd >= 0)
		close(c->fd);
	free(c->path);
	free(c);
}

static int hex_value(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

static int is_key(const char *s)
{
	size_t i;

	if (!s || strlen(s) != CASSETTE_KEY_LEN)
		return 0;
	for (i = 0; i < CASSETTE_KEY_LEN; i++)
		if (hex_value(s[i]) < 0)
			return 0;
	return 1;
}

/* HEX decoded into R's body: 0, or -1 when it is not even lower-case hex. */
static int unhex(const char *hex, size_t n, struct http_response *r)
{
	size_t i;
	int hi, lo;

	if (n % 2)
		return -1;
	r->body = xmalloc(n / 2 + 1);
	for (i = 0; i < n / 2; i++) {
		if ((hi = hex_value(hex[2 * i])) < 0 || (lo = hex_value(hex[2 * i + 1])) < 0)
			return -1;
		r->body[i] = (char)(hi << 4 | lo);
	}
	r->len = n / 2;
	r->body[r->len] = '\0';
	return 0;
}

static int failure_of(const char *name, enum http_failure *f)
{
	size_t i;

	for (i = 0; i < sizeof(failure_names) / sizeof(*failure_names); i++)
		if (strcmp(name, failure_names[i]) == 0) {
			*f = (enum http_failure)i;
			return 0;
		}
	return -1;
}

/* The response of line DOC into E: NULL, or what is wrong with it. */
static const char *read_entry(json_t *doc, struct cassette_entry *e)
{
	json_t *resp = json_object_get(doc, "response"), *h, *status, *body, *hex, *fail, *msg;
	const char *key = json_string_value(json_object_get(doc, "key")), *name;
	struct http_response *r = &e->resp;
	json_t *value;

	if (!json_is_object(doc))
		return "expected an object";
	if (!is_key(key))
		return "\"key\" is not 64 lower-case hex digits";
	memcpy(e->key, key, CASSETTE_KEY_LEN + 1);
	if (!json_is_object(resp))
		return "\"response\" is not an object";
	status = json_object_get(resp, "status");
	if (!json_is_integer(status) || json_integer_value(status) < 0 ||
	    json_integer_value(status) > 999)
		return "\"response.status\" is not a status from 0 to 999";
	r->status = (long)json_integer_value(status);
	h = json_object_get(resp, "headers");
	if (h && !json_is_object(h))
		return "\"response.headers\" is not an object";
	if (json_object_size(h) > MAX_HEADERS)
		return "\"response.headers\" has too many members";
	r->headers = xcalloc(json_object_size(h) + 1, sizeof(*r->headers));
	json_object_foreach(h, name, value) {
		if (!json_is_string(value))
			return "a header's value is not a string";
		r->headers[r->n_headers].name = xstrdup(name);
		r->headers[r->n_headers].value = xstrdup(json_string_value(value));
		r->n_headers++;
	}
	body = json_object_get(resp, "body");
	hex = json_object_get(resp, "body_hex");
	if (!!json_is_string(body) + !!json_is_string(hex) != 1 || (body && !json_is_string(body)) ||
	    (hex && !json_is_string(hex)))
		return "\"response\" needs one string \"body\" or \"body_hex\"";
	if (body) {
		r->len = json_string_length(body);
		r->body = xmalloc(r->len + 1);
		memcpy(r->body, json_string_value(body), r->len);
		r->body[r->len] = '\0';
	} else if (unhex(json_string_value(hex), json_string_length(hex), r) != 0) {
		return "\"response.body_hex\" is not lower-case hex";
	}
	fail = json_object_get(resp, "failure");
	msg = json_object_get(resp, "error");
	if (fail && (!json_is_string(fail) || failure_of(json_string_value(fail), &r->failure) != 0))
		return "\"response.failure\" is not connect, timeout, transfer, too_big or other";
	if (msg && !json_is_string(msg))
		return "\"response.error\" is not a string";
	if (r->failure != HTTP_FAIL_NONE)
		e->error = xstrdup(msg ? json_string_value(msg) : failure_names[r->failure]);
	return NULL;
}

int cassette_parse(struct cassette *c, const char *name, const char *data, size_t len,
		   struct orch_error *err)
{
	const char *p = data, *end = data + len, *nl, *why;
	struct cassette_entry e;
	json_error_t jerr;
	json_t *doc;
	long line = 0;

	for (; p < end; p = nl + 1) {
		line++;
		if (!(nl = memchr(p, '\n', (size_t)(end - p))))
			return orch_error_set(err, ORCH_EX_DATAERR, "cassette '%s': line %ld: no"
					      " newline at the end (a recording cut short?)",
					      name, line);
		if (nl == p)
			continue;
		if (!(doc = json_loadb(p, (size_t)(nl - p), JSON_ALLOW_NUL, &jerr)))
			return orch_error_set(err, ORCH_EX_DATAERR, "cassette '%s': line %ld: %s",
					      name, line, jerr.text);
		memset(&e, 0, sizeof(e));
		why = read_entry(doc, &e);
		json_decref(doc);
		if (why) {
			entry_release(&e);
			return orch_error_set(err, ORCH_EX_DATAERR, "cassette '%s': line %ld: %s",
					      name, line, why);
		}
		c->v = xreallocarray(c->v, c->n + 1, sizeof(*c->v));
		c->v[c->n++] = e;
	}
	return 0;
}

static int load(struct cassette *c, int fd, struct orch_error *err)
{
	struct strbuf s = STRBUF_INIT;
	char buf[65536];
	ssize_t n;
	int rc;

	strbuf_add(&s, "", 0);
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			free(s.buf);
			return orch_error_set(err, ORCH_EX_NOINPUT, "cannot read cassette '%s': %s",
					      c->path, strerror(errno));
		}
		strbuf_add(&s, buf, (size_t)n);
	}
	rc = cassette_parse(c, c->path, s.buf, s.len, err);
	free(s.buf);
	return rc;
}

struct cassette *cassette_open(const char *path, const char *mode, struct orch_error *err)
{
	struct cassette *c = xcalloc(1, sizeof(*c));
	int fd;

	c->fd = -1;
	c->path = xstrdup(path);
	if (!mode || strcmp(mode, "replay") == 0) {
		c->mode = CASSETTE_REPLAY;
	} else if (strcmp(mode, "record") == 0) {
		c->mode = CASSETTE_RECORD;
	} else if (strcmp(mode, "record-new") == 0) {
		c->mode = CASSETTE_RECORD_NEW;
	} else {
		orch_error_set(err, ORCH_EX_USAGE, "ORCH_LLM_CASSETTE_MODE: '%s' is not record,"
			       " replay or record-new", mode);
		goto fail;
	}
	if (c->mode != CASSETTE_REPLAY &&
	    (c->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666)) < 0) {
		orch_error_set(err, ORCH_EX_NOINPUT, "cannot open cassette '%s': %s", path,
			       strerror(errno));
		goto fail;
	}
	if (c->mode == CASSETTE_RECORD)
		return c;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		orch_error_set(err, ORCH_EX_NOINPUT, "cannot open cassette '%s': %s", path,
			       strerror(errno));
		goto fail;
	}
	/* Shared: a recording half-appended by another process is not read. */
	flock(fd, LOCK_SH);
	if (load(c, fd, err) != 0) {
		close(fd);
		goto fail;
	}
	close(fd);
	return c;
fail:
	cassette_free(c);
	return NULL;
}

int cassette_from_env(struct cassette **out, struct orch_error *err)
{
	const char *path = getenv("ORCH_LLM_CASSETTE"), *mode = getenv("ORCH_LLM_CASSETTE_MODE");

	*out = NULL;
	if (mode && !*mode)
		mode = NULL;
	if (!path || !*path) {
		if (mode)
			return orch_error_set(err, ORCH_EX_USAGE, "ORCH_LLM_CASSETTE_MODE is set"
					      " but ORCH_LLM_CASSETTE is not");
		return 0;
	}
	return (*out = cassette_open(path, mode, err)) ? 0 : -1;
}

/* --- serving and recording --------------------------------------------- */

int cassette_play(struct cassette *c, const char *key, struct http_response *resp,
		  int *rc, struct orch_error *err)
{
	struct cassette_entry *e;
	size_t i;

	http_response_release(resp);
	for (i = 0; i < c->n; i++) {
		e = &c->v[i];
		if (e->served || strcmp(e->key, key) != 0)
			continue;
		e->served = 1;
		resp->status = e->resp.status;
		resp->failure = e->resp.failure;
		resp->len = e->resp.len;
		resp->body = xmalloc(e->resp.len + 1);
		memcpy(resp->body, e->resp.body, e->resp.len + 1);
		resp->headers = xcalloc(e->resp.n_headers + 1, sizeof(*resp->headers));
		for (resp->n_headers = 0; resp->n_headers < e->resp.n_headers; resp->n_headers++) {
			resp->headers[resp->n_headers].name =
				xstrdup(e->resp.headers[resp->n_headers].name);
			resp->headers[resp->n_headers].value =
				xstrdup(e->resp.headers[resp->n_headers].value);
		}
		*rc = 0;
		if (e->error)
			*rc = orch_error_set(err, ORCH_EX_UNAVAILABLE, "%s", e->error);
		return 1;
	}
	return 0;
}

static int kept_header(const char *name)
{
	return strcasecmp(name, "content-type") == 0 || strcasecmp(name, "retry-after") == 0 ||
	       strncasecmp(name, "x-ratelimit-", 12) == 0;
}

/* TEXT (LEN bytes) with the key redacted, as a JSON string (new), or NULL
 * when it is not UTF-8. */
static json_t *redacted_string(const char *text, size_t len, const char *api_key)
{
	const char *keys[1] = { api_key };
	size_t n;
	char *clean = redact_keys(text, len, keys, 1, &n);
	json_t *s = json_stringn(clean, n);

	free(clean);
	return s;
}

static json_t *redacted_hex(const char *text, size_t len, const char *api_key)
{
	static const char digits[] = "0123456789abcdef";
	const char *keys[1] = { api_key };
	size_t n, i;
	char *clean = redact_keys(text, len, keys, 1, &n), *hex = xmalloc(2 * n + 1);
	json_t *s;

	for (i = 0; i < n; i++) {
		hex[2 * i] = digits[(unsigned char)clean[i] >> 4];
		hex[2 * i + 1] = digits[(unsigned char)clean[i] & 15];
	}
	hex[2 * n] = '\0';
	s = xjson(json_string(hex));
	free(hex);
	free(clean);
	return s;
}

/* The line recording one call (new), without its newline; NULL when
 * jansson cannot encode it. */
static char *entry_line(const char *key, const char *method, const char *url,
			const char *canon, const struct http_response *r, const char *error,
			const char *api_key)
{
	json_t *request = xjson(json_object()), *resp = xjson(json_object());
	json_t *headers = xjson(json_object()), *doc = xjson(json_object()), *v;
	char *path = http_url_path(url), *lower, *line;
	size_t i, j;

	xjson_set(request, "method", xjson(json_string(method)));
	xjson_set(request, "path", xjson(json_string(path ? path : "/")));
	if (!(v = json_loads(canon, JSON_DECODE_ANY, NULL)))
		v = redacted_string(canon, strlen(canon), api_key);
	xjson_set(request, "body", v ? v : xjson(json_null()));
	xjson_set(resp, "status", xjson(json_integer(r->status)));
	for (i = 0; i < r->n_headers; i++) {
		if (!kept_header(r->headers[i].name) ||
		    !(v = redacted_string(r->headers[i].value, strlen(r->headers[i].value), api_key)))
			continue;
		lower = xstrdup(r->headers[i].name);
		for (j = 0; lower[j]; j++)
			if (lower[j] >= 'A' && lower[j] <= 'Z')
				lower[j] = (char)(lower[j] - 'A' + 'a');
		if (json_object_set_new(headers, lower, v) != 0)
			json_decref(v);
		free(lower);
	}
	xjson_set(resp, "headers", headers);
	if ((v = redacted_string(r->body ? r->body : "", r->len, api_key)))
		xjson_set(resp, "body", v);
	else
		xjson_set(resp, "body_hex", redacted_hex(r->body, r->len, api_key));
	if (r->failure != HTTP_FAIL_NONE) {
		xjson_set(resp, "failure", xjson(json_string(failure_names[r->failure])));
		if (error && (v = redacted_string(error, strlen(error), api_key)))
			xjson_set(resp, "error", v);
	}
	xjson_set(doc, "key", xjson(json_string(key)));
	xjson_set(doc, "request", request);
	xjson_set(doc, "response", resp);
	line = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	free(path);
	return line;
}

int cassette_record(struct cassette *c, const char *key, const char *method,
		    const char *url, const char *body, size_t len,
		    const struct http_response *resp, const char *error,
		    const char *api_key, struct orch_error *err)
{
	char rkey[CASSETTE_KEY_LEN + 1], *canon, *line, *clean;
	const char *keys[1] = { api_key };
	size_t n, off = 0;
	ssize_t w;
	int rc = 0;

	cassette_key(method, url, body, len, rkey, &canon);
	/* A key in the request body itself is not written either. */
	clean = redact_keys(canon, strlen(canon), keys, 1, &n);
	line = entry_line(key, method, url, clean, resp, error, api_key);
	free(clean);
	free(canon);
	if (!line)
		return orch_error_set(err, ORCH_EX_SOFTWARE, "cannot encode a recording for"
				      " cassette '%s'", c->path);
	clean = xasprintf("%s\n", line);
	free(line);
	n = strlen(clean);
	flock(c->fd, LOCK_EX);
	/* One write(2): with O_APPEND the line lands whole, after the others. */
	while (off < n) {
		w = write(c->fd, clean + off, n - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			rc = orch_error_set(err, ORCH_EX_SOFTWARE, "cannot write cassette '%s': %s",
					    c->path, w < 0 ? strerror(errno) : "no space");
			break;
		}
		off += (size_t)w;
	}
	flock(c->fd, LOCK_UN);
	free(clean);
	return rc;
}
