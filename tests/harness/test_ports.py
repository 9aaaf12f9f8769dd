"""Every port a run hands out is its own: two services on one port fail the run misleadingly.

A CI run failed this way: the weather simulator and admin-api were given the same port, the
weather simulator bound it first, and the harness's PUT /api/v1/migration got its 404.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from harness.runtime.base import Wiring
from harness.runtime.ports import free_ports
from harness.runtime.process import ProcessRuntime


def test_ports_asked_for_together_are_distinct_and_bindable() -> None:
    ports = free_ports(300)
    assert len(set(ports)) == 300
    with socket.socket() as sock:  # each was free: the first can be bound again now
        sock.bind(("127.0.0.1", ports[0]))


def test_a_negative_count_is_refused() -> None:
    with pytest.raises(ValueError, match="count must be >= 0"):
        free_ports(-1)


@pytest.mark.parametrize("fault_proxy", [False, True])
def test_the_process_runtime_gives_every_listener_its_own_port(tmp_path: Path,
                                                                fault_proxy: bool) -> None:
    wiring = Wiring(run_dir=tmp_path, ha_url="ws://127.0.0.1:1/api/websocket", ha_token="t",
                    admin_token="a", weather_api_key="k", fault_proxy=fault_proxy)
    for _ in range(20):  # the kernel repeated a port about once per few hundred runs
        runtime = ProcessRuntime(wiring)
        try:
            listeners = [svc.port for svc in runtime._services.values()]
            listeners += [int(str(hop["listen"]).rsplit(":", 1)[1]) for hop in runtime._hops]
            config = (tmp_path / "influxdb" / "influxd.conf").read_text()
            rpc = int(config.split('bind-address = "127.0.0.1:', 1)[1].split('"', 1)[0])
            listeners.append(rpc)
            assert len(listeners) == len(set(listeners)), sorted(listeners)
            assert len(listeners) == (8 + 7 if fault_proxy else 7) + 1
        finally:
            asyncio.run(runtime._http.aclose())
