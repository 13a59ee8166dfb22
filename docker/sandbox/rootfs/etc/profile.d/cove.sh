# Cove managed profile. Sourced by login shells (/etc/profile), interactive non-login bash
# (/etc/bash.bashrc) and the skeleton ~/.bashrc, so it must be cheap and safe to run many times.
# POSIX sh: dash reads it too for `sh -l`.

# Only interactive shells get a prompt and a banner; scripts and `bash -c` stay silent.
case $- in
  *i*) ;;
  *) return 0 2>/dev/null || exit 0 ;;
esac

# A home that was never seeded (new volume, or the ephemeral fallback) still gets the skeleton.
if [ -n "${HOME:-}" ] && [ ! -e "$HOME/.cove-seeded" ] && [ -w "$HOME" ]; then
  /usr/local/bin/cove-seed-home >/dev/null 2>&1 || true
fi

if [ -n "${BASH_VERSION:-}" ]; then
  __cove_region=${COVE_REGION:-${AWS_REGION:-}}
  if [ -n "$__cove_region" ]; then
    PS1='\[\e[1;32m\]\u\[\e[0m\]@\[\e[1;36m\]'"$__cove_region"'\[\e[0m\]:\[\e[1;34m\]\w\[\e[0m\]\$ '
  else
    PS1='\[\e[1;32m\]\u\[\e[0m\]@\[\e[1;36m\]cove\[\e[0m\]:\[\e[1;34m\]\w\[\e[0m\]\$ '
  fi
  unset __cove_region
  # A terminal title with the region helps when several tabs are open.
  case ${TERM:-} in
    xterm* | screen* | tmux*) PS1='\[\e]0;\u@'"${COVE_REGION:-cove}"': \w\a\]'"$PS1" ;;
  esac
fi

# Completion costs a login about as much as everything else together (bash-completion is ~2000
# lines plus git's prompt library), so it loads on the first Tab instead: a default compspec
# sources it and returns 124, which makes bash look the compspec up again and find the real one.
# Shell variables and functions, not exported: every new bash sets this up again, once.
if [ -n "${BASH_VERSION:-}" ] && [ -z "${__cove_completion:-}" ] && [ -z "${BASH_COMPLETION_VERSINFO:-}" ] \
  && [ -r /usr/share/bash-completion/bash_completion ] && ! shopt -oq posix; then
  __cove_completion=lazy
  # What sourcing it would have switched on at once; kept so the shell behaves as before.
  shopt -s extglob progcomp
  __cove_load_completion() {
    # Ours is left for the library's own -D to replace: removing it first (`complete -r -D`)
    # stopped bash 5.2 from retrying at all.
    unset -f __cove_load_completion
    __cove_completion=loaded
    . /usr/share/bash-completion/bash_completion
    # Bash 5.2 retried only once here, so also do what the library's -D would do on the next
    # retry: load the command's completion file, unless the library already set one up for it.
    if ! complete -p -- "${1:-}" >/dev/null 2>&1 && type _completion_loader >/dev/null 2>&1; then
      _completion_loader "$@"
    fi
    return 124
  }
  complete -D -F __cove_load_completion
  # bash-completion used to bring the git prompt helper along; a PS1 may call it before any Tab.
  if ! type __git_ps1 >/dev/null 2>&1 && [ -r /usr/lib/git-core/git-sh-prompt ]; then
    __git_ps1() {
      unset -f __git_ps1
      . /usr/lib/git-core/git-sh-prompt && __git_ps1 "$@"
    }
  fi
fi

# Exported so a nested shell does not repeat it; every new terminal (a fresh exec) shows it once.
if [ -z "${COVE_MOTD_SHOWN:-}" ]; then
  COVE_MOTD_SHOWN=1
  export COVE_MOTD_SHOWN
  printf '\n  \033[1mCove shell\033[0m  user: %s  region: %s\n' \
    "${COVE_USER:-$(id -un 2>/dev/null || echo cloudshell-user)}" \
    "${COVE_REGION:-${AWS_REGION:-unknown}}"
  printf '  identity: %s\n' "${COVE_IDENTITY:-no AWS credentials}"
  if [ -z "${AWS_CONTAINER_CREDENTIALS_FULL_URI:-}" ]; then
    printf '  No AWS credentials in this tab. Open one from the portal with an account to get them.\n'
  fi
  # Why credentials could not be had when the tab opened (e.g. the role refused AssumeRole).
  if [ -n "${COVE_CREDENTIALS_NOTICE:-}" ]; then
    printf '  \033[33mcredentials: %s\033[0m\n' "$COVE_CREDENTIALS_NOTICE"
  fi
  printf '  Only files under %s persist; everything else resets when the environment restarts.\n\n' \
    "${HOME:-/home/cloudshell-user}"
fi
