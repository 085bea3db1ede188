"""Reporting: the run folder on disk, the live progress display and the final summary."""
