"""Log lines of gpu-tools processes: text (the default) or JSON objects, one per line, on stderr.

`configure_logging` puts the RedactingFilter on the handler either way, and the JSON formatter also
masks registered secrets in the fields it adds.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from gpu_tools.errors import RedactingFilter, redact

FIELDS = ("request_id", "user", "tool", "provider", "outcome", "duration_ms")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and the call fields when present."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in FIELDS:
            value = getattr(record, field, None)
            if value is not None:
                line[field] = redact(value) if isinstance(value, str) else value
        if record.exc_info and record.exc_info[0] is not None:
            line["error"] = record.exc_info[0].__name__  # the type only: a traceback may hold values
        return json.dumps(line, ensure_ascii=False)


def configure_logging(prog: str, log_format: str) -> None:
    """stderr logging for a gpu-tools process: text (WARNING and up) or JSON lines (INFO and up, with a
    line per tool call). The RedactingFilter sits on every handler either way."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
        root.setLevel(logging.WARNING)
        logging.getLogger("gpu_tools").setLevel(logging.INFO)
    else:
        handler.setFormatter(logging.Formatter(f"{prog}: %(levelname)s %(message)s"))
        root.setLevel(logging.WARNING)
    handler.addFilter(RedactingFilter())  # no credential ever reaches the log
    root.addHandler(handler)
    logging.getLogger("httpx").setLevel(logging.WARNING)
