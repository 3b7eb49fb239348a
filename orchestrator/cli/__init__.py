"""The command line: one module per command group, one parser (`main.build_parser`), shared arguments."""
