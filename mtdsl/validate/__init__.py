"""Validation: files and imports resolved, inheritance merged, values typed and checked."""
