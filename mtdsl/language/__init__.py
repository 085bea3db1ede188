"""The .mt language: grammar, syntax tree, parser and diagnostics."""
