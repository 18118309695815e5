"""Progress and status lines go through the standard `logging` module, logger "prunepeft".

The library only emits records; it never installs a handler. The CLI calls `configure()` so its
lines reach stderr; a Python user sees them after e.g. `logging.basicConfig(level=logging.INFO)`.
tqdm bars follow the same switch: they show only when the "prunepeft" logger is enabled for INFO.
"""

from __future__ import annotations

import logging
import sys

LOGGER = "prunepeft"
LEVELS = {"quiet": logging.WARNING, "normal": logging.INFO, "verbose": logging.DEBUG}


def get_logger(name: str = LOGGER) -> logging.Logger:
    return logging.getLogger(name)


def progress_enabled() -> bool:
    """Whether tqdm bars should show: the same switch as the INFO status lines."""
    return logging.getLogger(LOGGER).isEnabledFor(logging.INFO)


class _StderrHandler(logging.Handler):
    """Writes to whatever sys.stderr is at the time of the record (pytest and notebooks swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:  # logging must never break a run
            self.handleError(record)


def add_verbosity_flags(parser) -> None:
    """-q/--quiet (warnings and errors only, no progress bars) and -v/--verbose (debug lines)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-q", "--quiet", dest="verbosity", action="store_const", const="quiet", default="normal",
                       help="print only warnings, errors and the result line; no progress bars")
    group.add_argument("-v", "--verbose", dest="verbosity", action="store_const", const="verbose", help="also print debug lines")


def configure(verbosity: str = "normal") -> None:
    """The CLI's logging: one stderr handler on the "prunepeft" logger, message text only."""
    logger = logging.getLogger(LOGGER)
    for handler in list(logger.handlers):
        if getattr(handler, "_prunepeft_cli", False):
            logger.removeHandler(handler)
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler._prunepeft_cli = True  # replaced, not stacked, when main() runs twice in one process (tests)
    logger.addHandler(handler)
    logger.setLevel(LEVELS[verbosity])
    logger.propagate = False
