#include <errno.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "faults.h"
#include "orch.h"
#include "sha256.h"
#include "xalloc.h"
#include "banned.h"

#define INJECTED "injected by ORCH_FAULTS"

const char *fault_name(const struct fault *ft, char buf[16])
{
	switch (ft->kind) {
	case FAULT_STATUS:
		snprintf(buf, 16, "%ld", ft->status);
		return buf;
	case FAULT_TIMEOUT:
		return "timeout";
	case FAULT_CUT:
		return "cut";
	default:
		return "none";
	}
}

static int parse_probability(const char *s, double *p)
{
	char *end;

	errno = 0;
	*p = strtod(s, &end);
	return end != s && !*end && !errno && isfinite(*p) && *p >= 0 && *p <= 1 &&
	       (s[0] >= '0' && s[0] <= '9') ? 0 : -1;
}

static int parse_u64(const char *s, uint64_t max, uint64_t *v)
{
	char *end;
	unsigned long long n;

	if (!(s[0] >= '0' && s[0] <= '9'))
		return -1;
	errno = 0;
	n = strtoull(s, &end, 10);
	if (end == s || *end || errno || n > max)
		return -1;
	*v = n;
	return 0;
}

/* The fault of NAME into FT: 0, or -1 when there is no such fault. */
static int fault_of(const char *name, struct fault *ft)
{
	uint64_t status;

	if (strcmp(name, "timeout") == 0) {
		ft->kind = FAULT_TIMEOUT;
	} else if (strcmp(name, "cut") == 0) {
		ft->kind = FAULT_CUT;
	} else if (strlen(name) == 3 && parse_u64(name, 599, &status) == 0 && status >= 400) {
		ft->kind = FAULT_STATUS;
		ft->status = (long)status;
	} else {
		return -1;
	}
	return 0;
}

/* One ITEM of the specification into F. */
static int parse_item(struct faults *f, char *item, double *sum, int *seeded,
		      struct orch_error *err)
{
	char *at = strchr(item, '@'), buf[16];
	struct fault ft = { FAULT_NONE, 0, 0 };
	uint64_t v;
	size_t i;

	if (strncmp(item, "seed=", 5) == 0) {
		if (parse_u64(item + 5, UINT64_MAX, &f->seed) != 0)
			return orch_error_set(err, ORCH_EX_USAGE, "ORCH_FAULTS: '%s': the seed is"
					      " not a whole number from 0 to 2^64-1", item);
		*seeded = 1;
		return 0;
	}
	if (strncmp(item, "retry-after=", 12) == 0) {
		if (parse_u64(item + 12, 86400, &v) != 0)
			return orch_error_set(err, ORCH_EX_USAGE, "ORCH_FAULTS: '%s': retry-after"
					      " is not whole seconds from 0 to 86400", item);
		f->retry_after = (int64_t)v;
		return 0;
	}
	if (at)
		*at = '\0';
	if (fault_of(item, &ft) != 0)
		return orch_error_set(err, ORCH_EX_USAGE, "ORCH_FAULTS: unknown fault '%s'"
				      " (an HTTP status from 400 to 599, timeout, cut, seed=N"
				      " or retry-after=S)", item);
	if (!at || parse_probability(at + 1, &ft.p) != 0)
		return orch_error_set(err, ORCH_EX_USAGE, "ORCH_FAULTS: '%s': expected %s@P"
				      " with P a probability from 0 to 1", item, item);
	for (i = 0; i < f->n; i++)
		if (f->v[i].kind == ft.kind && f->v[i].status == ft.status)
			return orch_error_set(err, ORCH_EX_USAGE, "ORCH_FAULTS: '%s' is given"
					      " twice", fault_name(&ft, buf));
	if (f->n == FAULTS_MAX)
		return orch_error_set(err, ORCH_EX_USAGE, "ORCH_FAULTS: more than %d faults",
				      FAULTS_MAX);
	*sum += ft.p;
	if (*sum > 1 + 1e-9)
		return orch_error_set(err, ORCH_EX_USAGE, "ORCH_FAULTS: the probabilities add"
				      " up to more than 1");
	f->v[f->n++] = ft;
	return 0;
}

int faults_parse(struct faults *f, const char *spec, struct orch_error *err)
{
	char *copy = xstrdup(spec), *item = copy, *comma;
	double sum = 0;
	int seeded = 0, rc = 0;

	memset(f, 0, sizeof(*f));
	f->retry_after = 1;
	for (;;) {
		if ((comma = strchr(item, ',')))
			*comma = '\0';
		if (!*item) {
			rc = orch_error_set(err, ORCH_EX_USAGE, "ORCH_FAULTS: an empty item in '%s'",
					    spec);
			break;
		}
		if ((rc = parse_item(f, item, &sum, &seeded, err)) != 0 || !comma)
			break;
		item = comma + 1;
	}
	free(copy);
	if (rc == 0 && !seeded)
		f->seed = (uint64_t)orch_now_ms() << 20 ^ (uint64_t)getpid() ^
			  (uint64_t)orch_mono_ms() << 40;
	return rc;
}

int faults_from_env(struct faults **out, struct orch_error *err)
{
	const char *spec = getenv("ORCH_FAULTS");

	*out = NULL;
	if (!spec || !*spec)
		return 0;
	*out = xmalloc(sizeof(**out));
	if (faults_parse(*out, spec, err) != 0) {
		free(*out);
		*out = NULL;
		return -1;
	}
	return 0;
}

const struct fault *faults_draw(struct faults *f, const char *key)
{
	unsigned char in[16], d[SHA256_LEN];
	struct sha256 s;
	uint64_t x = 0;
	double u, edge = 0;
	size_t i;

	for (i = 0; i < 8; i++) {
		in[i] = (unsigned char)(f->seed >> (8 * i));
		in[8 + i] = (unsigned char)(f->calls >> (8 * i));
	}
	f->calls++;
	sha256_init(&s);
	sha256_add(&s, in, 8);
	sha256_add(&s, key, strlen(key));
	sha256_add(&s, in + 8, 8);
	sha256_final(&s, d);
	for (i = 0; i < 7; i++)
		x = x << 8 | d[i];
	/* 53 bits: every value exact as a double in [0, 1). */
	u = (double)(x >> 3) / 9007199254740992.0;
	for (i = 0; i < f->n; i++) {
		edge += f->v[i].p;
		if (u < edge)
			return &f->v[i];
	}
	return NULL;
}

static void add_header(struct http_response *r, const char *name, const char *value)
{
	r->headers = xreallocarray(r->headers, r->n_headers + 1, sizeof(*r->headers));
	r->headers[r->n_headers].name = xstrdup(name);
	r->headers[r->n_headers].value = xstrdup(value);
	r->n_headers++;
}

int faults_answer(const struct faults *f, const struct fault *ft, int64_t timeout_ms,
		  struct http_response *resp, struct orch_error *err)
{
	char *v;

	http_response_release(resp);
	if (ft->kind == FAULT_TIMEOUT) {
		resp->failure = HTTP_FAIL_TIMEOUT;
		resp->body = xstrdup("");
		return orch_error_set(err, ORCH_EX_UNAVAILABLE, "timed out after %lld ms (%s)",
				      (long long)timeout_ms, INJECTED);
	}
	resp->status = ft->status;
	resp->body = xasprintf("{\"error\":{\"message\":\"HTTP %ld %s\",\"type\":\"orch_fault\"}}",
			       ft->status, INJECTED);
	resp->len = strlen(resp->body);
	add_header(resp, "content-type", "application/json");
	if (ft->status == 429) {
		v = xasprintf("%lld", (long long)f->retry_after);
		add_header(resp, "retry-after", v);
		free(v);
	}
	return 0;
}

int faults_cut(struct http_response *resp, struct orch_error *err)
{
	resp->len /= 2;
	if (resp->body)
		resp->body[resp->len] = '\0';
	resp->failure = HTTP_FAIL_TRANSFER;
	return orch_error_set(err, ORCH_EX_UNAVAILABLE, "connection closed after %zu bytes of"
			      " the response (%s)", resp->len, INJECTED);
}
