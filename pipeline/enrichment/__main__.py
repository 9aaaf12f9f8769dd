"""``python -m pipeline.enrichment``: settings from the environment, JSON logs, serve on 8002."""

from __future__ import annotations

import logging
import os

from pipeline.common.config import settings_or_exit
from pipeline.common.logs import configure_logging
from pipeline.common.serving import run_service

from .app import build_app
from .core import SERVICE_NAME
from .settings import EnrichmentSettings


def main() -> None:
    settings = settings_or_exit(EnrichmentSettings, os.environ)
    configure_logging(SERVICE_NAME, settings.log_level)
    logging.getLogger(__name__).info("starting", extra={"settings": settings.safe_dump()})
    run_service(build_app(settings), settings.host, settings.port)


if __name__ == "__main__":
    main()
