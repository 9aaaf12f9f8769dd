"""A local influxd (Debian's influxdb package, 1.x): its config and command line.

The config uses the keys ``influxd config`` prints for this 1.6.7 build; it prints
``reporting-enabled`` where upstream 1.x documents ``reporting-disabled``, so both are set
(influxd ignores unknown keys). It binds everything to 127.0.0.1 on the given ports and turns
off what only adds noise or background writes: the ``_internal`` monitor store, query/HTTP
logs, the logo. The test fixtures and the process runtime both start influxd from here.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

INFLUXD = os.environ.get("CUTOVER_INFLUXD", "/usr/bin/influxd")

CONFIG_TEMPLATE = """\
reporting-enabled = false
reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"

[meta]
  dir = "{root}/meta"
  logging-enabled = false

[data]
  dir = "{root}/data"
  wal-dir = "{root}/wal"
  index-version = "inmem"
  query-log-enabled = false
  trace-logging-enabled = false

[monitor]
  store-enabled = false

[subscriber]
  enabled = false

[continuous_queries]
  enabled = false
  log-enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:{port}"
  log-enabled = false
  suppress-write-log = true
  pprof-enabled = false

[logging]
  level = "warn"
  suppress-logo = true
"""


def find_influxd() -> str | None:
    return shutil.which(INFLUXD) or (INFLUXD if os.access(INFLUXD, os.X_OK) else None)


def write_config(root: Path, port: int, rpc_port: int) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    config = root / "influxd.conf"
    config.write_text(CONFIG_TEMPLATE.format(root=root, port=port, rpc_port=rpc_port))
    return config


def influxd_argv(binary: str, config: Path) -> list[str]:
    return [binary, "run", "-config", str(config)]
