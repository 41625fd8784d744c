#include <stdlib.h>
#include <string.h>

#include "actions.h"
#include "llm.h"
#include "llm_request.h"
#include "xalloc.h"
#include "banned.h"

/* --- the schema -------------------------------------------------------- */

/* What a field holds, as actions_validate() checks it (lib/actions.c). */
enum shape {
	SHAPE_TEXT,          /* non-empty text */
	SHAPE_TEXT_OR_EMPTY, /* text, may be empty */
	SHAPE_ARTIFACT,      /* non-empty, up to ACTIONS_MAX_ARTIFACT bytes */
	SHAPE_ARTIFACT_TYPE, /* 1 to 32 of [a-z0-9._-] */
	SHAPE_PHASE,         /* 1 to 64 bytes */
	SHAPE_KEY,           /* 1 to 128 bytes, not a key orch keeps */
	SHAPE_ID,            /* an integer from 1 */
	SHAPE_PRIORITY,      /* an integer from 1 to 5 */
	SHAPE_STATUS,        /* pending, completed or cancelled */
	SHAPE_TO,            /* a stack name, a stack id from 1, or null */
	SHAPE_VALUE,         /* a JSON scalar */
};

struct field {
	const char *name; /* NULL ends a list */
	enum shape shape;
	int optional;     /* may be null (strict output has every field) */
};

/* The vocabulary: README.md, "Actions"; lib/actions.c, action_defs. */
static const struct {
	const char *type;
	const char *note;        /* the action's description, or NULL */
	struct field fields[4];
} vocabulary[] = {
	{ "set_project", NULL,
	  { { "title", SHAPE_TEXT, 0 }, { "description", SHAPE_TEXT_OR_EMPTY, 0 } } },
	{ "set_phase", NULL, { { "phase", SHAPE_PHASE, 0 } } },
	{ "create_todo", NULL,
	  { { "content", SHAPE_TEXT, 0 }, { "priority", SHAPE_PRIORITY, 1 } } },
	{ "update_todo", "Give at least one of content, priority and status.",
	  { { "id", SHAPE_ID, 0 }, { "content", SHAPE_TEXT, 1 },
	    { "priority", SHAPE_PRIORITY, 1 }, { "status", SHAPE_STATUS, 1 } } },
	{ "complete_todo", NULL, { { "id", SHAPE_ID, 0 } } },
	{ "delete_todo", NULL, { { "id", SHAPE_ID, 0 } } },
	{ "clear_todos", NULL, { { NULL, SHAPE_TEXT, 0 } } },
	{ "write_artifact", "The whole new version of the application.",
	  { { "content", SHAPE_ARTIFACT, 0 }, { "artifact_type", SHAPE_ARTIFACT_TYPE, 1 } } },
	{ "send_message", NULL, { { "content", SHAPE_TEXT, 0 }, { "to", SHAPE_TO, 1 } } },
	{ "reply_user", NULL, { { "message_id", SHAPE_ID, 0 }, { "content", SHAPE_TEXT, 0 } } },
	{ "mark_read", NULL, { { "message_id", SHAPE_ID, 0 } } },
	{ "recommend", NULL, { { "recommendation", SHAPE_TEXT, 0 } } },
	{ "remember", NULL, { { "key", SHAPE_KEY, 0 }, { "value", SHAPE_VALUE, 1 } } },
};

/* {"type": TYPE} or {"type": [TYPE, "null"]} (new). */
static json_t *typed(const char *type, int optional)
{
	return optional ? xjson(json_pack("{s:[s,s]}", "type", type, "null"))
			: xjson(json_pack("{s:s}", "type", type));
}

/* A text field of MIN to MAX bytes (new). */
static json_t *text(int min, long max, int optional, int keywords, const char *what)
{
	json_t *f = typed("string", optional);
	char *d;

	if (min)
		d = xasprintf("%s: not empty, at most %ld bytes.", what, max);
	else
		d = xasprintf("%s: at most %ld bytes.", what, max);
	xjson_set(f, "description", xjson(json_string(d)));
	free(d);
	if (keywords) {
		if (min)
			xjson_set(f, "minLength", xjson(json_integer(min)));
		xjson_set(f, "maxLength", xjson(json_integer(max)));
	}
	return f;
}

/* An integer field from MIN, to MAX when MAX > 0 (new). */
static json_t *integer(int min, int max, int optional, int keywords, const char *d)
{
	json_t *f = typed("integer", optional);

	xjson_set(f, "description", xjson(json_string(d)));
	if (keywords) {
		xjson_set(f, "minimum", xjson(json_integer(min)));
		if (max > 0)
			xjson_set(f, "maximum", xjson(json_integer(max)));
	}
	return f;
}

static json_t *field_schema(const struct field *f, int keywords)
{
	json_t *s;

	switch (f->shape) {
	case SHAPE_TEXT:
		return text(1, ACTIONS_MAX_TEXT, f->optional, keywords, "Text");
	case SHAPE_TEXT_OR_EMPTY:
		return text(0, ACTIONS_MAX_TEXT, f->optional, keywords, "Text");
	case SHAPE_ARTIFACT:
		return text(1, ACTIONS_MAX_ARTIFACT, f->optional, keywords,
			    "The complete file");
	case SHAPE_PHASE:
		return text(1, 64, f->optional, keywords, "A short word");
	case SHAPE_KEY:
		s = text(1, 128, f->optional, keywords, "A name of your own");
		xjson_set(s, "description", xjson(json_string(
			"A name of your own: not empty, at most 128 bytes, and not"
			" reviewer_recommendations, last_planning_time or last_review_time,"
			" which orch keeps.")));
		return s;
	case SHAPE_ARTIFACT_TYPE:
		s = typed("string", f->optional);
		xjson_set(s, "description", xjson(json_string(
			"1 to 32 of a-z, 0-9, '.', '_' and '-': html, css, js, ...")));
		if (keywords)
			xjson_set(s, "pattern", xjson(json_string("^[a-z0-9._-]{1,32}$")));
		return s;
	case SHAPE_ID:
		return integer(1, 0, f->optional, keywords, "An id from the context, from 1.");
	case SHAPE_PRIORITY:
		return integer(1, 5, f->optional, keywords,
			       "1 (low) to 5 (urgent); null for the default.");
	case SHAPE_STATUS:
		return xjson(json_pack("{s:[s,s],s:[s,s,s,n],s:s}", "type", "string", "null",
				       "enum", "pending", "completed", "cancelled",
				       "description", "Never in_progress: orch keeps it."));
	case SHAPE_TO:
		s = xjson(json_pack("{s:[s,s,s],s:s}", "type", "string", "integer", "null",
				    "description", "A stack's name or id (from 1), or null to"
				    " send to every stack."));
		if (keywords) {
			xjson_set(s, "minLength", xjson(json_integer(1)));
			xjson_set(s, "minimum", xjson(json_integer(1)));
		}
		return s;
	case SHAPE_VALUE:
		return xjson(json_pack("{s:[s,s,s,s]}", "type", "string", "number", "boolean",
				       "null"));
	}
	return xjson(json_object());
}

json_t *llm_actions_schema(int keywords)
{
	json_t *any = xjson(json_array()), *props, *req, *action, *actions;
	const struct field *f;
	size_t i;

	for (i = 0; i < sizeof(vocabulary) / sizeof(vocabulary[0]); i++) {
		props = xjson(json_object());
		req = xjson(json_array());
		xjson_set(props, "type", xjson(json_pack("{s:s,s:[s]}", "type", "string",
							 "enum", vocabulary[i].type)));
		xjson_append(req, xjson(json_string("type")));
		for (f = vocabulary[i].fields; f->name; f++) {
			xjson_set(props, f->name, field_schema(f, keywords));
			xjson_append(req, xjson(json_string(f->name)));
		}
		action = xjson(json_pack("{s:s,s:o,s:o,s:b}", "type", "object",
					 "properties", props, "required", req,
					 "additionalProperties", 0));
		if (vocabulary[i].note)
			xjson_set(action, "description", xjson(json_string(vocabulary[i].note)));
		xjson_append(any, action);
	}
	actions = xjson(json_pack("{s:s,s:{s:o},s:s}", "type", "array", "items", "anyOf", any,
				  "description", "At most 100 actions, applied in order, all or"
				  " none."));
	if (keywords)
		xjson_set(actions, "maxItems", xjson(json_integer(ACTIONS_MAX_COUNT)));
	return xjson(json_pack("{s:s,s:{s:{s:s},s:o},s:[s,s],s:b}", "type", "object",
			       "properties", "thinking", "type", "string",
			       "actions", actions, "required", "thinking", "actions",
			       "additionalProperties", 0));
}

/* --- the request ------------------------------------------------------- */

char *llm_request_body(const struct llm_request *rq, size_t *len)
{
	json_t *req, *format = NULL;
	char *body;

	if (!(rq->caps & LLM_CAP_NO_SCHEMA))
		format = xjson(json_pack("{s:s,s:{s:s,s:b,s:o}}", "type", "json_schema",
					 "json_schema", "name", "orch_actions",
					 "strict", !(rq->caps & LLM_CAP_NO_STRICT), "schema",
					 llm_actions_schema(!(rq->caps & LLM_CAP_SCHEMA_PLAIN))));
	else if (!(rq->caps & LLM_CAP_NO_OBJECT))
		format = xjson(json_pack("{s:s}", "type", "json_object"));
	req = xjson(json_pack("{s:s,s:O}", "model", rq->model, "messages", rq->messages));
	if (!(rq->caps & LLM_CAP_NO_TEMPERATURE))
		xjson_set(req, "temperature", xjson(json_real(rq->temperature)));
	xjson_set(req, rq->caps & LLM_CAP_COMPLETION_TOKENS ? "max_completion_tokens"
		  : "max_tokens", xjson(json_integer(rq->max_tokens)));
	xjson_set(req, "stream", json_false());
	if (format)
		xjson_set(req, "response_format", format);
	if (!(body = json_dumps(req, JSON_COMPACT)))
		xjson(NULL);
	json_decref(req);
	*len = strlen(body);
	return body;
}

/* --- the budget -------------------------------------------------------- */

#define MARGIN_PERCENT 5 /* of a limit, kept free for our estimates' error */
#define MIN_REPLY 256    /* tokens: less is no room for a reply */

int64_t llm_prompt_tokens(size_t bytes)
{
	/* Tokenisers give 3 to 4 bytes of English, JSON or HTML a token. */
	return (int64_t)(bytes / 3) + 1;
}

static int64_t min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

int llm_budget_fit(const struct llm_budget *in, int64_t limit, struct llm_budget *out,
		   char **why)
{
	int64_t budget = limit - limit * MARGIN_PERCENT / 100, p = in->prompt_tokens;
	int64_t least = min64(MIN_REPLY, in->max_tokens), m, need, per;
	size_t drop;

	*out = *in;
	*why = NULL;
	if (limit <= 0) {
		out->max_tokens = in->max_tokens / 2;
		out->artifact_shown = in->artifact_shown / 2;
		if (out->max_tokens >= MIN_REPLY)
			return 0;
		*why = xasprintf("a ceiling of %lld tokens was refused as too large, and a"
				 " smaller one leaves no room for a reply",
				 (long long)in->max_tokens);
		return -1;
	}
	if (p < 1)
		p = 1;
	m = budget - p;
	if (m >= in->max_tokens) {
		/* The server said no to what the numbers call fitting: ask
		 * for less anyway. */
		m = in->max_tokens - in->max_tokens / 4;
	} else if (m < min64(in->max_tokens, budget / 2) && in->artifact_shown > 0) {
		/* The prompt leaves the reply too little: the two share the
		 * limit, the artifact cut for it. */
		m = min64(in->max_tokens, budget / 2);
		need = p - (budget - m);
		/* Bytes a token of this prompt, on the safe side. */
		per = (int64_t)in->prompt_bytes / p + 1;
		drop = (size_t)(need * per + need * per / 10 + 1);
		if (drop < in->artifact_shown) {
			out->artifact_shown = in->artifact_shown - drop;
		} else {
			out->artifact_shown = 0;
			p -= (int64_t)in->artifact_shown / per;
			m = min64(in->max_tokens, budget - p);
		}
	}
	if (m >= least && m >= 1) {
		out->max_tokens = m;
		return 0;
	}
	*out = *in;
	*why = xasprintf("the prompt alone, about %lld tokens, leaves no room for a reply"
			 " under the limit of %lld tokens", (long long)p, (long long)limit);
	return -1;
}
