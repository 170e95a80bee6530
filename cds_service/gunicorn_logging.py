"""gunicorn's own log lines (worker boots, timeouts, signals) as the same JSON lines as the service's.

Why a logger class rather than a `logconfig_dict`: a dictConfig would also reconfigure the root
logger and drop the service's own handler; this class only swaps the formatter of the handlers
gunicorn sets up for itself, whatever gunicorn settings (`errorlog`, `loglevel`) are in force.
"""

from __future__ import annotations

from typing import Any

from gunicorn.glogging import Logger

from cds_service.observability import JsonFormatter, RequestContextFilter


class JsonGunicornLogger(Logger):  # type: ignore[misc]
    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for logger in (self.error_log, self.access_log):
            for handler in logger.handlers:
                handler.setFormatter(JsonFormatter())
                handler.addFilter(RequestContextFilter())
