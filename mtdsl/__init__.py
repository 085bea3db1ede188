"""mtdsl: a language and compiler for gradient-based meta-learning experiments."""

__version__ = "0.1.0"
