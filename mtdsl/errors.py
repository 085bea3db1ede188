"""The two kinds of failure a user can meet, and the exit codes the CLI gives them.

A `SpecError` is a mistake in a spec (exit 2); it carries every diagnostic found, so a
user fixes a file in one pass. A `RunError` is anything that stops a valid spec from
running: missing data, a diverged run (exit 1). Neither is ever shown as a traceback.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_RUN_ERROR = 1
EXIT_SPEC_ERROR = 2


class MtdslError(Exception):
    exit_code = EXIT_RUN_ERROR


class RunError(MtdslError):
    """A valid spec could not run: say what is wrong and what to do about it."""

    exit_code = EXIT_RUN_ERROR


class DataError(RunError):
    """A dataset is missing, partial or unreadable."""


class SpecError(MtdslError):
    exit_code = EXIT_SPEC_ERROR

    def __init__(self, diagnostics):
        self.diagnostics = list(diagnostics)
        super().__init__("\n".join(d.message for d in self.diagnostics))
