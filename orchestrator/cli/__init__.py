"""The command line: one module per command (or group of subcommands), each with `register` and its
handlers; `main.build_parser` builds the one parser, `common_args` declares the shared arguments."""
