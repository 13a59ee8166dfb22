# Replaces bash-completion's hook, which sourced the whole library in every login shell before
# the first prompt. Cove's managed profile (/etc/profile.d/cove.sh, also read by /etc/bash.bashrc)
# loads it on the first Tab instead; completion works as before.
:
