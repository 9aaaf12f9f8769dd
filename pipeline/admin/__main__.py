"""`python -m pipeline.admin`: admin-api on CUTOVER_HOST:CUTOVER_PORT (default 8003)."""

from __future__ import annotations

import os

from pipeline.admin.app import NAME, build_app
from pipeline.admin.settings import AdminSettings
from pipeline.common.config import settings_or_exit
from pipeline.common.logs import configure_logging
from pipeline.common.serving import run_service


def main() -> None:
    settings = settings_or_exit(AdminSettings, os.environ)
    configure_logging(NAME, settings.log_level)
    run_service(build_app(settings), settings.host, settings.port)


if __name__ == "__main__":
    main()
