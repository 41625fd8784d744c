/*
 * fuzz_actions: actions_validate() on anything an agent may print.
 */
#include "actions.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct orch_error err = ORCH_ERROR_INIT;
	json_t *in = fuzz_json(data, size);

	if (!in)
		return 0;
	if (actions_validate(in, &err) != 0 && (!err.msg || err.status != 65))
		__builtin_trap();
	orch_error_release(&err);
	json_decref(in);
	return 0;
}
