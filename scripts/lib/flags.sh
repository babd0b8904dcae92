# Flag parsing for the scripts, sourced by them (after `set -euo pipefail`):
#
#   . "$ROOT/scripts/lib/flags.sh"
#   while (($#)); do
#     case "$1" in
#       --game | --game=*) flag_set game "$@"; shift "$FLAG_SHIFT" ;;
#       --model-flag | --model-flag=*) flag_add model_flags "$@"; shift "$FLAG_SHIFT" ;;
#       --demo) demo=1; shift ;;
#       -h | --help) usage; exit 0 ;;
#       --) shift; extra=("$@"); break ;;
#       *) flag_unknown "$1" ;;
#     esac
#   done
#
# A flag takes its value as `--flag value` or `--flag=value`. A flag without
# its value, and an unknown flag, end the script with exit status 2 and one
# line on stderr naming the flag, e.g.
#   train-local.sh: --game needs a value (see --help)
# Messages start with FLAGS_SCRIPT (default: the script's file name).

FLAGS_SCRIPT="${FLAGS_SCRIPT:-${0##*/}}"
FLAG_VALUE="" FLAG_SHIFT=1

# flag_die MESSAGE...: the script's usage error (exit status 2).
flag_die() {
  echo "$FLAGS_SCRIPT: $* (see --help)" >&2
  exit 2
}

# flag_value [--any] FLAG [NEXT...]: the value of FLAG (the script's "$@" from
# the flag on) in FLAG_VALUE, and in FLAG_SHIFT how many arguments it took (1
# for --flag=value, 2 for --flag value). The next argument is the value unless
# there is none or it starts with `--` (another flag, or the `--` separator);
# with --any, for flags whose values are flags of another program, any next
# argument but `--` is the value.
flag_value() {
  local any=0
  if [ "$1" = --any ]; then any=1; shift; fi
  case "$1" in
    --*=*)
      FLAG_VALUE="${1#*=}"
      FLAG_SHIFT=1
      ;;
    *)
      if (($# < 2)) || [ "$2" = -- ] || { ((!any)) && [[ "$2" == --* ]]; }; then
        flag_die "$1 needs a value"
      fi
      FLAG_VALUE="$2"
      FLAG_SHIFT=2
      ;;
  esac
}

# flag_set VAR FLAG [NEXT...]: VAR=the flag's value (flag_value; shift FLAG_SHIFT after).
flag_set() {
  local var=$1
  shift
  flag_value "$@"
  printf -v "$var" '%s' "$FLAG_VALUE"
}

# flag_add ARRAY FLAG [NEXT...]: appends the value of a repeatable flag whose
# values are flags for another program (flag_value --any) to the array ARRAY.
flag_add() {
  local -n _flags_array=$1
  shift
  flag_value --any "$@"
  _flags_array+=("$FLAG_VALUE")
}

# flag_unknown ARG: the error for an argument no case matched.
flag_unknown() {
  case "$1" in
    -*) flag_die "unknown flag $1" ;;
    *) flag_die "unexpected argument $1" ;;
  esac
}
