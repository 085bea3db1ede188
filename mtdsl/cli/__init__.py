"""The `mtdsl` command line."""
