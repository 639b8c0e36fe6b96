# Generated from the typer app by completions/generate.py; do not edit.
# Regenerate with: python completions/generate.py

_gradio_clean_completion() {
    local IFS=$'
'
    COMPREPLY=( $( env COMP_WORDS="${COMP_WORDS[*]}" \
                   COMP_CWORD=$COMP_CWORD \
                   _GRADIO_CLEAN_COMPLETE=complete_bash $1 ) )
    return 0
}

complete -o default -F _gradio_clean_completion gradio-clean
