"""``python -m pipeline.legacy``: the legacy monolith."""

from __future__ import annotations

import logging
import os

from pipeline.common.config import settings_or_exit
from pipeline.common.logs import configure_logging
from pipeline.common.serving import run_service
from pipeline.legacy.app import SERVICE, build_app
from pipeline.legacy.settings import LegacySettings


def main() -> None:
    settings = settings_or_exit(LegacySettings, os.environ)
    configure_logging(SERVICE, settings.log_level)
    logging.getLogger(__name__).info("starting", extra={"settings": settings.safe_dump()})
    run_service(build_app(settings), settings.host, settings.port)


if __name__ == "__main__":
    main()
