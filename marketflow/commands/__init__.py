"""One module per ``marketflow`` subcommand: ``HELP``, ``add_arguments``, ``run``."""
