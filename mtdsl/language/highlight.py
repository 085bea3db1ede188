"""A Pygments lexer for .mt, registered as the `mt` plugin (see pyproject), so editors,
documentation tools and rich can colour specs."""

from __future__ import annotations

from pygments.lexer import RegexLexer, bygroups, words
from pygments.token import Comment, Keyword, Name, Number, Operator, Punctuation, String, Text


class MtLexer(RegexLexer):
    name = "mtdsl"
    aliases = ["mt", "mtdsl"]
    filenames = ["*.mt"]

    tokens = {
        "root": [
            (r"\s+", Text),
            (r"//.*?$", Comment.Single),
            (words(("import", "experiment", "extends", "sweep", "over", "model", "block", "for", "in",
                    "residual", "shortcut", "grid", "zip"), suffix=r"\b"), Keyword),
            (words(("true", "false", "none"), suffix=r"\b"), Keyword.Constant),
            (words(("masked", "meta", "fixed"), suffix=r"\b"), Name.Builtin),
            (r'"(\\\\|\\"|[^"])*"', String),
            (r"[0-9]+(\.[0-9]*)?([eE][+-]?[0-9]+)?|\.[0-9]+([eE][+-]?[0-9]+)?", Number),
            (r"([A-Za-z_][A-Za-z0-9_]*)(\s*)(\()", bygroups(Name.Function, Text, Punctuation)),
            (r"([A-Za-z_][A-Za-z0-9_]*)(\s*)(:|=)(?!=)", bygroups(Name.Attribute, Text, Operator)),
            (r"[A-Za-z_][A-Za-z0-9_]*", Name),
            (r"->|//|[-+*/%]", Operator),
            (r"[{}()\[\],.:=]", Punctuation),
        ]
    }
