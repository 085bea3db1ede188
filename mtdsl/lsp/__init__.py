"""`mtdsl lsp`: a language server for .mt files (diagnostics, hover, completion, definition).

It runs the same loader and compiler as `mtdsl check`, on the editor's unsaved text, and
never imports torch: the compiler's shapes, parameter counts and plan are pure Python.
"""
