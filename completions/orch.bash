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
_orch_stack_subcommands="init create list names show start pause stop rm say messages todo artifact history graph usage config"

# _orch_stack_operand N: the Nth word after orch-stack's subcommand that is
# not an option or an option's value ("" when there is none).
_orch_stack_operand() {
	local values i w n=0
	values=" $(_orch_value_options orch-stack | tr '\n' ' ') "
	for ((i = 1; i < COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		if [[ $values == *" $w "* ]]; then
			((i++))
			continue
		fi
		[[ $w == -* ]] && continue
		if ((n++ == $1)); then
			echo "$w"
			return
		fi
	done
}

# The artifact versions of the stack on the command line, for --version.
_orch_artifact_versions() {
	local stack
	stack=$(_orch_stack_operand 1)
	[[ -n $stack ]] && orch-stack artifact versions "$stack" 2>/dev/null
}

# _orch_complete_prog PROG: complete COMP_WORDS[1..COMP_CWORD] for PROG,
# where COMP_WORDS[0] is the program (or what stands for it).
_orch_complete_prog() {
	local prog=$1 cur=${COMP_WORDS[COMP_CWORD]} prev=
	((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}

	if [[ $prog == orch-stack ]]; then
		case $prev in
		--version)
			COMPREPLY=($(compgen -W "$(_orch_artifact_versions)" -- "$cur"))
			return
			;;
		-o | --output)
			COMPREPLY=($(compgen -f -- "$cur"))
			return
			;;
		esac
	fi
	case $prev in
	--db | --config | --prompt | --trace | --cacert)
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
	local cur=${COMP_WORDS[COMP_CWORD]} i sub= sub2= nsub=0 w values
	values=" $(_orch_value_options orch-stack | tr '\n' ' ') "
	for ((i = 1; i < COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		if [[ $values == *" $w "* ]]; then
			((i++))
			continue
		fi
		case $w in
		-*) ;;
		*)
			if [[ -z $sub ]]; then
				sub=$w
			elif [[ -z $sub2 ]]; then
				sub2=$w
			fi
			((nsub++))
			;;
		esac
	done
	if [[ $cur == -* ]]; then
		if [[ -z $sub ]]; then
			COMPREPLY=($(compgen -W "$(_orch_options orch-stack)" -- "$cur"))
		else
			# The options on the subcommand's help line, and the global ones.
			local pat="^  $sub( |\$)"
			[[ $sub =~ ^(todo|artifact)$ && $sub2 =~ ^(add|list|diff|versions)$ ]] &&
				pat="^  $sub $sub2( |\$)"
			[[ $sub == artifact && ! $sub2 =~ ^(list|diff|versions)$ ]] &&
				pat="^  artifact STACK( |\$)"
			COMPREPLY=($(compgen -W "$(orch-stack --help 2>/dev/null | grep -E "$pat" |
				grep -oE -- '--[a-z][a-z-]*') --db --now" -- "$cur"))
		fi
		return
	fi
	if ((nsub == 0)); then
		COMPREPLY=($(compgen -W "$_orch_stack_subcommands" -- "$cur"))
		return
	fi
	case $sub in
	show | start | pause | stop | rm | say | messages | history | graph | usage)
		((nsub == 1)) && COMPREPLY=($(compgen -W "$(_orch_stack_names)" -- "$cur"))
		;;
	todo)
		if ((nsub == 1)); then
			COMPREPLY=($(compgen -W "add list" -- "$cur"))
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
			local stack
			stack=$(_orch_stack_operand 2)
			COMPREPLY=($(compgen -W "$(orch-stack artifact versions "$stack" 2>/dev/null)" -- "$cur"))
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
