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
  eval "$(dircolors -b)"
  alias ls='ls --color=auto'
  alias grep='grep --color=auto'
fi
alias ll='ls -alF'
alias la='ls -A'

if ! shopt -oq posix && [ -f /usr/share/bash-completion/bash_completion ]; then
  . /usr/share/bash-completion/bash_completion
fi
complete -C aws_completer aws 2>/dev/null

# Prompt and banner come from Cove; keep this line so updates to them reach you.
[ -r /etc/profile.d/cove.sh ] && . /etc/profile.d/cove.sh

[ -r "$HOME/.bash_aliases" ] && . "$HOME/.bash_aliases"
