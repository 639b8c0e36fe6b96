# Generated from the typer app by completions/generate.py; do not edit.
# Regenerate with: python completions/generate.py

complete --command gradio-clean --no-files --arguments "(env _GRADIO_CLEAN_COMPLETE=complete_fish _TYPER_COMPLETE_FISH_ACTION=get-args _TYPER_COMPLETE_ARGS=(commandline -cp) gradio-clean)" --condition "env _GRADIO_CLEAN_COMPLETE=complete_fish _TYPER_COMPLETE_FISH_ACTION=is-args _TYPER_COMPLETE_ARGS=(commandline -cp) gradio-clean"
