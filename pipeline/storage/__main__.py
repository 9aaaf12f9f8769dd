"""``python -m pipeline.storage``: the data-storage service."""

from __future__ import annotations

import logging
import os

from pipeline.common.config import settings_or_exit
from pipeline.common.logs import configure_logging
from pipeline.common.serving import run_service
from pipeline.storage.app import build_app
from pipeline.storage.settings import StorageSettings


def main() -> None:
    settings = settings_or_exit(StorageSettings, os.environ)
    configure_logging("storage", settings.log_level)
    logging.getLogger(__name__).info("starting", extra={"settings": settings.safe_dump()})
    run_service(build_app(settings), settings.host, settings.port)


if __name__ == "__main__":
    main()
