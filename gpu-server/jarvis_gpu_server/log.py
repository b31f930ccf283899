"""Start-up and runtime logging: every line is ``jarvis-gpu-server: <message>`` on stderr.

The CLI reads these lines to show the loading stage. Stable prefixes after
``jarvis-gpu-server: ``: ``starting``, ``listening on <url>``, ``device <device> ...``,
``loading model <model> (<engine>, <device>[ <compute type>])``, ``model loaded in <s> s``,
``ready on <url>``, ``error: <message>``. Secrets are never logged.
"""

from __future__ import annotations

import logging
import sys

PREFIX = "jarvis-gpu-server: "


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = super().format(record)
        if record.levelno >= logging.ERROR:
            message = "error: " + message
        elif record.levelno >= logging.WARNING:
            message = "warning: " + message
        return PREFIX + message.replace("\n", "\n" + PREFIX)


def setup_logging(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter("%(message)s"))
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    # Our own lines say what uvicorn would; keep its start-up chatter out of the way.
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING if level != "debug" else logging.DEBUG)
    for noisy in ("httpx", "httpcore", "multipart", "python_multipart"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def fatal(message: str) -> None:
    sys.stderr.write(f"{PREFIX}error: {message}\n")
    sys.stderr.flush()
