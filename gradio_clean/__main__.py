from gradio_clean.cli import main

main()
