#include <string.h>
#include <time.h>

#include "orch.h"

const char *const orch_agents[ORCH_AGENT_COUNT] = {
	"planner", "builder", "communicator", "reviewer",
};

int orch_agent_index(const char *name)
{
	int i;

	for (i = 0; i < ORCH_AGENT_COUNT; i++)
		if (strcmp(name, orch_agents[i]) == 0)
			return i;
	return -1;
}

int64_t orch_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t orch_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
