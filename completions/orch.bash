# bash completion for orch and every orch-* program.
#
# Option lists come from each program's own --help, and stack names from
# `orch-stack names`, so the completion never drifts from the programs.

# _orch_options PROG: every --option PROG's help mentions.
_orch_options() {
	"$1" --help 2>/dev/null | grep -oE -- '--[a-z][a-z-]*' | sort -u
}

# _orch_value_options PROG: the options that take a value, as the help
# writes them: "--db PATH", "--priority 1-5", "--stack NAME|ID", "-o FILE",
# "--format dot|mermaid".
_orch_value_options() {
	"$1" --help 2>/dev/null |
		grep -oE -- '(--[a-z][a-z-]*|[[ ]-[a-z]) ([A-Z0-9][A-Z0-9|=_-]*|[a-z]+(\|[a-z]+)+)' |
		sed 's/^[[ ]//' | cut -d ' ' -f 1 | sort -u
}

_orch_stack_names() {
	orch-stack names 2>/dev/null
}

_orch_agents="planner builder communicator reviewer"
# The statuses a todo may have (lib/admin.c, admin_todo_statuses).
_orch_todo_statuses="pending in_progress completed cancelled parked"
_orch_stack_subcommands="init create list names show start pause stop rm say messages todo memory artifact history cycle graph log usage budget report gc config copy"

# _orch_stack_operands: set the array ops to the words of orch-stack before
# the cursor that are not options or their values: the subcommand first.
_orch_stack_operands() {
	local values i w
	values=" $(_orch_value_options orch-stack | tr '\n' ' ') "
	ops=()
	for ((i = 1; i < COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		if [[ $values == *" $w "* ]]; then
			((i++))
			continue
		fi
		[[ $w == -* ]] || ops+=("$w")
	done
}

# _orch_complete_prog PROG: complete COMP_WORDS[1..COMP_CWORD] for PROG,
# where COMP_WORDS[0] is the program (or what stands for it).
_orch_complete_prog() {
	local prog=$1 cur=${COMP_WORDS[COMP_CWORD]} prev=
	((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}

	if [[ $prog == orch-stack ]]; then
		case $prev in
		--version)
			local -a ops
			_orch_stack_operands
			[[ -n ${ops[1]} ]] && COMPREPLY=($(compgen -W \
				"$(orch-stack artifact versions "${ops[1]}" 2>/dev/null)" -- "$cur"))
			return
			;;
		-o | --output)
			COMPREPLY=($(compgen -f -- "$cur"))
			return
			;;
		--agent)
			COMPREPLY=($(compgen -W "$_orch_agents" -- "$cur"))
			return
			;;
		--format)
			COMPREPLY=($(compgen -W "dot mermaid" -- "$cur"))
			return
			;;
		--status)
			COMPREPLY=($(compgen -W "$_orch_todo_statuses" -- "$cur"))
			return
			;;
		-q | --query)
			return
			;;
		esac
	fi
	case $prev in
	--db | --config | --prompt | --trace | --cacert | --to)
		COMPREPLY=($(compgen -f -- "$cur"))
		return
		;;
	--stack)
		COMPREPLY=($(compgen -W "$(_orch_stack_names)" -- "$cur"))
		return
		;;
	--format)
		COMPREPLY=($(compgen -W "json dot mermaid" -- "$cur"))
		return
		;;
	--role)
		COMPREPLY=($(compgen -W "$_orch_agents" -- "$cur"))
		return
		;;
	--agent)
		compopt -o nospace 2>/dev/null
		COMPREPLY=($(compgen -W "planner= builder= communicator= reviewer=" -- "$cur"))
		return
		;;
	--priority)
		COMPREPLY=($(compgen -W "1 2 3 4 5" -- "$cur"))
		return
		;;
	-j)
		return
		;;
	--*)
		# A number or text of the user's own: nothing to offer.
		if [[ " $(_orch_value_options "$prog" | tr '\n' ' ') " == *" $prev "* ]]; then
			return
		fi
		;;
	esac
	if [[ $prog == orch-stack ]]; then
		_orch_complete_stack_words
		return
	fi
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$(_orch_options "$prog")" -- "$cur"))
		return
	fi
	case $prog in
	orch-agent) ;;
	*) COMPREPLY=($(compgen -f -- "$cur")) ;;
	esac
}

# Words of orch-stack: SUBCOMMAND, then its operands (a stack name where
# one goes), and the options of the subcommand given.
_orch_complete_stack_words() {
	local cur=${COMP_WORDS[COMP_CWORD]} sub sub2 nsub
	local -a ops
	_orch_stack_operands
	sub=${ops[0]} sub2=${ops[1]} nsub=${#ops[@]}
	if [[ $cur == -* ]]; then
		if [[ -z $sub ]]; then
			COMPREPLY=($(compgen -W "$(_orch_options orch-stack)" -- "$cur"))
		else
			# The options on the subcommand's help line, and the global ones.
			local pat="^  $sub( |\$)"
			[[ $sub =~ ^(todo|artifact|log|messages|memory)$ &&
				$sub2 =~ ^(add|list|diff|versions|show|rm|clear|retry)$ ]] &&
				pat="^  $sub $sub2( |\$)"
			[[ $sub == artifact && ! $sub2 =~ ^(list|diff|versions)$ ]] &&
				pat="^  artifact STACK( |\$)"
			COMPREPLY=($(compgen -W "$(orch-stack --help 2>/dev/null | grep -E "$pat" |
				grep -oE -- '--[a-z][a-z-]*' | sort -u) --db --now" -- "$cur"))
		fi
		return
	fi
	if ((nsub == 0)); then
		COMPREPLY=($(compgen -W "$_orch_stack_subcommands" -- "$cur"))
		return
	fi
	case $sub in
	show | start | pause | stop | rm | say | history | cycle | graph | usage | budget | report | gc)
		((nsub == 1)) && COMPREPLY=($(compgen -W "$(_orch_stack_names)" -- "$cur"))
		;;
	messages)
		if ((nsub == 1)); then
			COMPREPLY=($(compgen -W "clear retry $(_orch_stack_names)" -- "$cur"))
		elif ((nsub == 2)) && [[ $sub2 =~ ^(clear|retry)$ ]]; then
			COMPREPLY=($(compgen -W "$(_orch_stack_names)" -- "$cur"))
		fi
		;;
	memory)
		if ((nsub == 1)); then
			COMPREPLY=($(compgen -W "clear" -- "$cur"))
		elif ((nsub == 2)); then
			COMPREPLY=($(compgen -W "$(_orch_stack_names)" -- "$cur"))
		elif ((nsub == 3)); then
			COMPREPLY=($(compgen -W "$_orch_agents" -- "$cur"))
		fi
		;;
	log)
		((nsub == 1)) && COMPREPLY=($(compgen -W "show $(_orch_stack_names)" -- "$cur"))
		;;
	todo)
		if ((nsub == 1)); then
			COMPREPLY=($(compgen -W "add list rm clear retry" -- "$cur"))
		elif ((nsub == 2)); then
			COMPREPLY=($(compgen -W "$(_orch_stack_names)" -- "$cur"))
		fi
		;;
	artifact)
		if ((nsub == 1)); then
			COMPREPLY=($(compgen -W "list diff versions $(_orch_stack_names)" -- "$cur"))
		elif ((nsub == 2)) && [[ $sub2 =~ ^(list|diff|versions)$ ]]; then
			COMPREPLY=($(compgen -W "$(_orch_stack_names)" -- "$cur"))
		elif ((nsub == 3 || nsub == 4)) && [[ $sub2 == diff ]]; then
			COMPREPLY=($(compgen -W "$(orch-stack artifact versions "${ops[2]}" 2>/dev/null)" -- "$cur"))
		fi
		;;
	esac
}

_orch() {
	local prog=${COMP_WORDS[0]##*/}
	if [[ $prog == orch ]]; then
		if ((COMP_CWORD == 1)); then
			COMPREPLY=($(compgen -W "stack detect graph exec decide agent help --help --version" -- "${COMP_WORDS[1]}"))
			return
		fi
		if [[ ${COMP_WORDS[1]} == help ]]; then
			((COMP_CWORD == 2)) && COMPREPLY=($(compgen -W "stack detect graph exec decide agent" -- "${COMP_WORDS[2]}"))
			return
		fi
		# Complete as orch-SUB with the subcommand standing for the program.
		local sub=orch-${COMP_WORDS[1]}
		COMP_WORDS=("$sub" "${COMP_WORDS[@]:2}")
		((COMP_CWORD--))
		prog=$sub
	fi
	_orch_complete_prog "$prog"
}

complete -F _orch orch orch-stack orch-detect orch-graph orch-exec orch-decide orch-agent
