# heaptrail.bash — bash completion for the heaptrail command (installed as
# share/bash-completion/completions/heaptrail): the commands, each command's options and their
# values, trace files for the commands that read traces, process ids for the control commands,
# and after `record`/`check` PROG (or `--`) the program's own words, completed as bash would
# complete that command.
# shellcheck shell=bash disable=SC2207  # COMPREPLY=($(compgen ...)): bash-completion's idiom

_heaptrail_commands="record check dump stats report export diff start stop status snapshot top help"

_heaptrail_options()
{
    local tracing="--stacks --stacks= --free-stacks --unwind --mode --sample --buffer --compress
                   --follow-forks --leak-scan"
    local progress="--progress --no-progress"
    local symbols="--no-symbols --symbols-path"
    case $1 in
        record)
            echo "-o --output $tracing --no-control -q --quiet --live --pprof-every --pprof-dir
                  --pprof-at-peak --no-symbols -h --help"
            ;;
        check)
            echo "--leaks --leaks= --suppressions --no-default-suppressions --print-suppressions
                  --max-peak --fail-on-oom --junit --json --exitcode --trace --stacks --follow-forks
                  -q --quiet -h --help"
            ;;
        dump)
            echo "-f --format -o --output -n --limit --event --source --heap --thread --min-size
                  --max-size --from --to $progress -h --help"
            ;;
        stats) echo "-f --format -t --top $progress -h --help" ;;
        report)
            echo "-f --format --top --sections --window --from --to --temporary-threshold
                  $symbols -o --output $progress -h --help"
            ;;
        export)
            echo "-f --format -o --output --folded-value --at --large-block --from --to $symbols
                  $progress -h --help"
            ;;
        diff) echo "-f --format --top --metric --from --to $symbols -o --output $progress -h --help" ;;
        start)
            echo "-o --output $tracing --socket --raw --pprof-every --pprof-dir --pprof-at-peak
                  --no-symbols -h --help"
            ;;
        top)
            echo "-o --output --stacks --stacks= --free-stacks --unwind --mode --sample --buffer
                  --no-symbols --socket -h --help"
            ;;
        stop | status | snapshot) echo "--socket --raw -h --help" ;;
    esac
}

# The values of an option that takes one; returns 1 when the option takes none.
_heaptrail_option_value()
{
    local command=$1 option=$2 cur=$3
    case $option in
        -o | --output | --junit | --json | --trace | --socket)
            _filedir
            ;;
        --suppressions)
            _filedir
            ;;
        --symbols-path | --pprof-dir)
            _filedir -d
            ;;
        -f | --format)
            local formats
            case $command in
                dump) formats="text csv jsonl" ;;
                stats) formats="text json" ;;
                report) formats="text json html" ;;
                export) formats="chrome massif folded pprof" ;;
                diff) formats="text json folded html" ;;
            esac
            COMPREPLY=($(compgen -W "$formats" -- "$cur"))
            ;;
        --mode) COMPREPLY=($(compgen -W "block discard ring" -- "$cur")) ;;
        --unwind) COMPREPLY=($(compgen -W "libunwind fp" -- "$cur")) ;;
        --leaks) COMPREPLY=($(compgen -W "lost definite all none" -- "$cur")) ;;
        --metric) COMPREPLY=($(compgen -W "allocated count leaked peak" -- "$cur")) ;;
        --folded-value) COMPREPLY=($(compgen -W "bytes count leaked peak" -- "$cur")) ;;
        --sections)
            local sections="summary leaks peak top temporary histogram sources invalid lost window"
            local prefix="" word=$cur
            if [[ $cur == *,* ]]; then
                prefix=${cur%,*},
                word=${cur##*,}
            fi
            COMPREPLY=($(compgen -P "$prefix" -W "$sections" -- "$word"))
            compopt -o nospace 2>/dev/null
            ;;
        --event)
            local events="ALLOC FREE REALLOC HEAP_CREATE HEAP_DESTROY HEAP_EXPAND HEAP_CONTRACT
                          RUNDOWN_HEAP RUNDOWN_BLOCK LOST blocks"
            local prefix="" word=$cur
            if [[ $cur == *,* ]]; then
                prefix=${cur%,*},
                word=${cur##*,}
            fi
            COMPREPLY=($(compgen -P "$prefix" -W "$events" -- "$word"))
            compopt -o nospace 2>/dev/null
            ;;
        --source)
            local prefix="" word=$cur
            if [[ $cur == *,* ]]; then
                prefix=${cur%,*},
                word=${cur##*,}
            fi
            COMPREPLY=($(compgen -P "$prefix" -W "LOOKASIDE LOWFRAG MAINPATH SLOWPATH INVALID" \
                -- "$word"))
            compopt -o nospace 2>/dev/null
            ;;
        -n | --limit | -t | --top | --heap | --thread | --min-size | --max-size | --from | --to | \
            --window | --temporary-threshold | --at | --large-block | --sample | --buffer | \
            --compress | --max-peak | --exitcode | --pprof-every)
            # a number, size or time: nothing to offer
            ;;
        *) return 1 ;;
    esac
    return 0
}

_heaptrail()
{
    local cur prev words cword
    _init_completion -s || return

    # The command: the first word after heaptrail that is not an option.
    local i command="" command_index=0
    for ((i = 1; i < cword; i++)); do
        if [[ ${words[i]} != -* ]]; then
            command=${words[i]}
            command_index=$i
            break
        fi
    done

    if [[ -z $command ]]; then
        if [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W "-h --help --version" -- "$cur"))
        else
            COMPREPLY=($(compgen -W "$_heaptrail_commands" -- "$cur"))
        fi
        return
    fi

    if [[ $command == help ]]; then
        ((cword == command_index + 1)) &&
            COMPREPLY=($(compgen -W "${_heaptrail_commands% help}" -- "$cur"))
        return
    fi

    # record and check: after `--`, or after the first word that is not an option or an
    # option's value, the rest is PROG ARGS: complete it as its own command line.
    if [[ $command == record || $command == check ]]; then
        for ((i = command_index + 1; i < cword; i++)); do
            if [[ ${words[i]} == -- ]]; then
                _command_offset $((i + 1))
                return
            fi
            if [[ ${words[i]} != -* ]]; then
                case ${words[i - 1]} in
                    -o | --output | --unwind | --mode | --sample | --buffer | --compress | \
                        --suppressions | --max-peak | --junit | --json | --exitcode | --trace | \
                        --leaks)
                        continue
                        ;;
                esac
                _command_offset $i
                return
            fi
        done
    fi

    # An option's value, given as --option=value or as the next word.
    if [[ $cur == --*=* ]]; then
        local option=${cur%%=*}
        cur=${cur#*=}
        _heaptrail_option_value "$command" "$option" "$cur"
        return
    fi
    if _heaptrail_option_value "$command" "$prev" "$cur"; then
        return
    fi
    # --stacks=DEPTH: a number (its value is optional, so only when given with '=').
    [[ ${split-} && $prev == --stacks ]] && return

    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$(_heaptrail_options "$command")" -- "$cur"))
        [[ ${COMPREPLY-} == *= ]] && compopt -o nospace 2>/dev/null
        return
    fi

    case $command in
        record | check)
            COMPREPLY=($(compgen -c -- "$cur"))
            ;;
        dump | stats | report | export | diff)
            _filedir
            ;;
        start | stop | status | snapshot | top)
            _pids
            ;;
    esac
}
complete -F _heaptrail heaptrail
