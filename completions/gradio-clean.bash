# Generated from the typer app by completions/generate.py; do not edit.
# Regenerate with: python completions/generate.py

_gradio_clean_completion() {
    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}"
    local cmd="" i
    for ((i = 1; i < COMP_CWORD; i++)); do
        case "${COMP_WORDS[i]}" in
            scan|prune|config|schedule) cmd="${COMP_WORDS[i]}"; break ;;
        esac
    done
    case "$cmd" in
        "")
            COMPREPLY=($(compgen -W "scan prune config schedule --version -V -h --help" -- "$cur"))
            ;;
        scan)
            case "$prev" in
                --sessions-dir) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -d -- "$cur")); return 0 ;;
                --config) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$cur")); return 0 ;;
                --top) compopt +o default 2>/dev/null; COMPREPLY=(); return 0 ;;
            esac
            if [[ $cur == -* ]]; then
                COMPREPLY=($(compgen -W "--sessions-dir --config --json --top -h --help" -- "$cur"))
            else
                compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -d -- "$cur"))
            fi
            ;;
        prune)
            case "$prev" in
                --sessions-dir) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -d -- "$cur")); return 0 ;;
                --config) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$cur")); return 0 ;;
                --older-than) compopt +o default 2>/dev/null; COMPREPLY=(); return 0 ;;
                --age-by) COMPREPLY=($(compgen -W "mtime atime ctime newest" -- "$cur")); return 0 ;;
                --dedupe) COMPREPLY=($(compgen -W "hardlink delete" -- "$cur")); return 0 ;;
                --keep) COMPREPLY=($(compgen -W "newest oldest" -- "$cur")); return 0 ;;
                --session-ttl) compopt +o default 2>/dev/null; COMPREPLY=(); return 0 ;;
                --max-size) compopt +o default 2>/dev/null; COMPREPLY=(); return 0 ;;
                --min-free) compopt +o default 2>/dev/null; COMPREPLY=(); return 0 ;;
                --min-age) compopt +o default 2>/dev/null; COMPREPLY=(); return 0 ;;
                --category) COMPREPLY=($(compgen -W "cache leftover session examples flagged internal other" -- "$cur")); return 0 ;;
                --include) compopt +o default 2>/dev/null; COMPREPLY=(); return 0 ;;
                --exclude) compopt +o default 2>/dev/null; COMPREPLY=(); return 0 ;;
                --wait) compopt +o default 2>/dev/null; COMPREPLY=(); return 0 ;;
                --limit) compopt +o default 2>/dev/null; COMPREPLY=(); return 0 ;;
                --metrics-file) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$cur")); return 0 ;;
            esac
            if [[ $cur == -* ]]; then
                COMPREPLY=($(compgen -W "--sessions-dir --config --older-than --age-by --duplicates --no-duplicates --dedupe --keep --verify --no-verify --orphaned-sessions --no-orphaned-sessions --session-ttl --max-size --min-free --min-age --category --include --exclude --apply --yes -y --wait --json --quiet -q --limit --metrics-file -h --help" -- "$cur"))
            else
                compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -d -- "$cur"))
            fi
            ;;
        config)
            case "$prev" in
                --config) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$cur")); return 0 ;;
            esac
            if [[ $cur == -* ]]; then
                COMPREPLY=($(compgen -W "--config --json -h --help" -- "$cur"))
            else
                COMPREPLY=()
            fi
            ;;
        schedule)
            case "$prev" in
                --sessions-dir) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -d -- "$cur")); return 0 ;;
                --config) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$cur")); return 0 ;;
                --older-than) compopt +o default 2>/dev/null; COMPREPLY=(); return 0 ;;
                --age-by) COMPREPLY=($(compgen -W "mtime atime ctime newest" -- "$cur")); return 0 ;;
                --dedupe) COMPREPLY=($(compgen -W "hardlink delete" -- "$cur")); return 0 ;;
                --keep) COMPREPLY=($(compgen -W "newest oldest" -- "$cur")); return 0 ;;
                --session-ttl) compopt +o default 2>/dev/null; COMPREPLY=(); return 0 ;;
                --max-size) compopt +o default 2>/dev/null; COMPREPLY=(); return 0 ;;
                --min-free) compopt +o default 2>/dev/null; COMPREPLY=(); return 0 ;;
                --min-age) compopt +o default 2>/dev/null; COMPREPLY=(); return 0 ;;
                --category) COMPREPLY=($(compgen -W "cache leftover session examples flagged internal other" -- "$cur")); return 0 ;;
                --include) compopt +o default 2>/dev/null; COMPREPLY=(); return 0 ;;
                --exclude) compopt +o default 2>/dev/null; COMPREPLY=(); return 0 ;;
                --every) compopt +o default 2>/dev/null; COMPREPLY=(); return 0 ;;
                --metrics-file) compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$cur")); return 0 ;;
            esac
            if [[ $cur == -* ]]; then
                COMPREPLY=($(compgen -W "--sessions-dir --config --older-than --age-by --duplicates --no-duplicates --dedupe --keep --verify --no-verify --orphaned-sessions --no-orphaned-sessions --session-ttl --max-size --min-free --min-age --category --include --exclude --every --systemd --metrics-file -h --help" -- "$cur"))
            else
                compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -d -- "$cur"))
            fi
            ;;
    esac
    return 0
}

complete -o default -F _gradio_clean_completion gradio-clean
