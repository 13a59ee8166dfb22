# ~/.bashrc: yours to edit; it persists with your home.

case $- in
  *i*) ;;
  *) return ;;
esac

HISTCONTROL=ignoreboth
HISTSIZE=10000
HISTFILESIZE=20000
shopt -s histappend checkwinsize

if [ -x /usr/bin/dircolors ]; then
  # For colour terminals the image has dircolors' answer ready: one process less per shell.
  case ${TERM:-} in
    xterm* | screen* | tmux* | *color*) . /usr/local/share/cove/ls-colors.sh 2>/dev/null || eval "$(dircolors -b)" ;;
    *) eval "$(dircolors -b)" ;;
  esac
  alias ls='ls --color=auto'
  alias grep='grep --color=auto'
fi
alias ll='ls -alF'
alias la='ls -A'

# Tab completion (bash-completion, loaded on the first Tab) comes with the managed profile below.
complete -C aws_completer aws 2>/dev/null

# Prompt and banner come from Cove; keep this line so updates to them reach you.
[ -r /etc/profile.d/cove.sh ] && . /etc/profile.d/cove.sh

[ -r "$HOME/.bash_aliases" ] && . "$HOME/.bash_aliases"
