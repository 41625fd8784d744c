/*
 * llm_request.h - what orch-agent asks a chat completions server: the
 * request body, shaped by what the server is known to refuse, the JSON
 * schema of the actions, and the token budget that fits a server's limit.
 * Pure functions: no I/O, no state.
 */
#ifndef ORCH_LLM_REQUEST_H
#define ORCH_LLM_REQUEST_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

/*
 * The JSON schema of the actions vocabulary for strict structured output
 * (new): every field required, optional ones nullable (actions_validate()
 * takes a null optional field as absent), and what the validator enforces
 * beyond types (a priority from 1 to 5, ids from 1, no empty text, at most
 * 100 actions, ...) said in each field's description and, with KEYWORDS,
 * also as JSON Schema keywords (minimum, maximum, minLength, maxLength,
 * maxItems, pattern) for servers whose strict mode takes them.
 */
json_t *llm_actions_schema(int keywords);

/* One request, as it is to be sent. */
struct llm_request {
	const char *model;      /* borrowed */
	const json_t *messages; /* borrowed: the conversation so far */
	double temperature;     /* sampling, unless LLM_CAP_NO_TEMPERATURE */
	int64_t max_tokens;     /* the reply's ceiling */
	unsigned caps;          /* LLM_CAP_*: what the server refuses */
};

/*
 * The body of RQ (new string, *LEN bytes): "stream": false; the ceiling as
 * "max_tokens", or "max_completion_tokens" (LLM_CAP_COMPLETION_TOKENS);
 * "temperature" unless LLM_CAP_NO_TEMPERATURE; "response_format" a strict
 * json_schema, with its keywords unless LLM_CAP_SCHEMA_PLAIN, "strict":
 * false under LLM_CAP_NO_STRICT, a json_object under LLM_CAP_NO_SCHEMA,
 * and none at all under LLM_CAP_NO_OBJECT.
 */
char *llm_request_body(const struct llm_request *rq, size_t *len);

/* The tokens one request reserves, and the artifact shown in it. */
struct llm_budget {
	int64_t max_tokens;    /* the reply's ceiling */
	int64_t prompt_tokens; /* the prompt, as the server counted it, or an
				  estimate from prompt_bytes */
	size_t prompt_bytes;   /* bytes of the prompt's messages */
	size_t artifact_shown; /* characters of the artifact in the prompt */
	size_t artifact_len;   /* characters the artifact has; 0 for none */
};

/* An estimate of the tokens in BYTES of prompt, on the safe side. */
int64_t llm_prompt_tokens(size_t bytes);

/*
 * A budget that reserves at most LIMIT tokens (prompt and ceiling, with a
 * margin), from IN: 0 with *OUT, the ceiling lowered, and, when the
 * prompt leaves the reply too little, the artifact shown cut so the two
 * share the limit; or -1 with *WHY (new) when nothing smaller fits. A
 * LIMIT of 0 (the server did not say) halves the ceiling and the artifact.
 */
int llm_budget_fit(const struct llm_budget *in, int64_t limit, struct llm_budget *out,
		   char **why);

#endif
