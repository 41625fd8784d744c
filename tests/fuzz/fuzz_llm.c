/*
 * fuzz_llm: what orch-agent parses from outside. A chat completions reply
 * envelope through reply_document() (static in llm.c, so llm.c is built
 * into this harness), the input as a rate-limit duration, and as the
 * orch.context on orch-agent's stdin (llm_context_check, then the user
 * message made from it).
 */
#include "../../lib/llm.c"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct orch_error err = ORCH_ERROR_INIT;
	struct llm_options o = { .role = "builder", .max_tokens = 16000 };
	struct turn t = { .o = &o };
	const char *agent;
	json_t *in, *doc;
	char *s, *msg;

	s = xstrndup((const char *)data, size);
	llm_parse_duration(s);
	free(s);
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
