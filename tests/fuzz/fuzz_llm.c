/*
 * fuzz_llm: what orch-agent parses from outside. A chat completions reply
 * envelope through reply_document() (static in llm.c, so llm.c is built
 * into this harness), the input as a rate-limit duration, and as the
 * orch.context on orch-agent's stdin (llm_context_check, then the user
 * message made from it). The bytes as a server's message through
 * redact_text(), which must leave no 8 bytes of the key, no control byte,
 * and no more than its bound.
 */
#include "../../lib/llm.c"
#include "fuzz.h"

static const char fuzz_key[] = "gsk_fuzz_KEY_0123456789abcdef";

/* Trap when OUT breaks a promise of redact_text(). */
static void check_redacted(const char *out, size_t max)
{
	const char *keys[1] = { fuzz_key };
	size_t i, len = strlen(out);
	char run[REDACT_MIN_RUN + 1];

	if (max && len > max + 3)
		__builtin_trap();
	for (i = 0; i < len; i++)
		if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f)
			__builtin_trap();
	for (i = 0; i + REDACT_MIN_RUN <= strlen(keys[0]); i++) {
		memcpy(run, keys[0] + i, REDACT_MIN_RUN);
		run[REDACT_MIN_RUN] = '\0';
		if (strstr(out, run))
			__builtin_trap();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *keys[2] = { NULL, fuzz_key };
	struct orch_error err = ORCH_ERROR_INIT;
	struct llm_options o = { .role = "builder", .max_tokens = 16000 };
	struct turn t = { .o = &o };
	const char *agent;
	json_t *in, *doc;
	char *s, *msg;

	s = xstrndup((const char *)data, size);
	llm_parse_duration(s);
	free(s);
	/* The input, and the input with the key spliced in at every cut. */
	s = redact_text((const char *)data, size, keys, 2, size % 64);
	check_redacted(s, size % 64);
	free(s);
	if (size >= 2) {
		size_t at = data[0] % size, n = size + sizeof(fuzz_key) - 1;
		char *buf = xmalloc(n);

		memcpy(buf, data, at);
		memcpy(buf + at, fuzz_key, sizeof(fuzz_key) - 1);
		memcpy(buf + at + sizeof(fuzz_key) - 1, data + at, size - at);
		s = redact_text(buf, n, keys, 2, data[1]);
		check_redacted(s, data[1]);
		free(s);
		free(buf);
	}
	if (!(in = fuzz_json(data, size)))
		return 0;
	doc = reply_document(&t, in, &err);
	if (!doc && (!err.msg || err.status != 65))
		__builtin_trap();
	orch_error_release(&err);
	json_decref(doc);
	agent = json_string_value(json_object_get(in, "agent"));
	if (!agent || orch_agent_index(agent) < 0)
		agent = "builder";
	if (llm_context_check(in, agent, &err) == 0) {
		msg = llm_user_message(in);
		free(msg);
	}
	orch_error_release(&err);
	json_decref(in);
	return 0;
}
