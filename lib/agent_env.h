/*
 * agent_env.h - the environment orch-exec gives the agents it runs.
 *
 * Every variable of orch-exec's own environment passes on, except a
 * provider's: ORCH_LLM_*, GROQ_* and each variable a fallback names as
 * its key (ORCH_LLM_FALLBACKS, llm.fallbacks: "URL|MODEL|KEYVAR;..."),
 * which only the built-in agent sees (a command whose program is named
 * orch-agent), unless the setting exec.pass_env lists it. Then orch-exec
 * sets its own, for every agent:
 *
 *   ORCH_DB          the database orch-exec uses (absolute), so an agent
 *                    that opens it (orch-agent's provider memory) opens
 *                    the same one
 *   ORCH_CONFIG      orch-exec's --config FILE (absolute), when given,
 *                    which every orch program reads as its --config
 *   ORCH_EXEC_OWNER  orch-exec's lease owner (cycle_owner_self()): every
 *                    process an agent starts carries it, which is how a
 *                    later pipeline finds what a killed orch-exec's
 *                    agents left running (cycle_recover())
 */
#ifndef ORCH_AGENT_ENV_H
#define ORCH_AGENT_ENV_H

#include "config.h"
#include "error.h"

#define AGENT_ENV_OWNER "ORCH_EXEC_OWNER"

struct agent_env {
	char **builtin; /* owned, NULL-terminated "NAME=VALUE": orch-agent's */
	char **command; /* owned, NULL-terminated: any other command's */
};

#define AGENT_ENV_INIT { NULL, NULL }

/*
 * Build both environments from BASE (NULL-terminated "NAME=VALUE", as
 * environ), the settings of C (exec.pass_env, llm.fallbacks), the
 * database path DB, the configuration file CONFIG_FILE (or NULL) and the
 * lease owner OWNER. 0, or -1 with ERR (65: a malformed exec.pass_env).
 */
int agent_env_build(struct agent_env *ae, char *const *base, const struct config *c,
		    const char *db, const char *config_file, const char *owner,
		    struct orch_error *err);

void agent_env_release(struct agent_env *ae);

/* Whether ARGV runs the built-in agent: its program's name is orch-agent. */
int agent_env_is_builtin(char *const argv[]);

/*
 * Whether ARGV is the built-in agent with nothing but its role: exactly
 * "orch-agent --role ROLE" (any path to it), which orch-exec may run in
 * its own process (turns.h). Other flags are a process's to read.
 */
int agent_env_is_plain_builtin(char *const argv[], const char *role);

#endif
