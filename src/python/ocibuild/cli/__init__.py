"""One module per `python -m ocibuild <command>`, each with `main(argv) -> int` (see __main__.COMMANDS)."""
