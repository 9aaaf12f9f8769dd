"""The fault injector: carries out the scenario's faults and heals them.

Each fault runs as its own task (wait ``at``, inject, wait ``for``, heal), so a fault never
blocks the steps after it, and a traffic step's faults (``during: traffic 50``) are injected
when the step starts and healed when it ends. Whatever is still broken when the load stops is
healed before the drain: the verdict judges what the pipeline does once the world recovers.
Every injection and heal is a ``fault`` marker on the report's timeline.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx

from harness.errors import RuntimeFailed
from harness.runtime.base import Runtime, ServiceName
from harness.scenario.faults import (
    Fault,
    HomeAssistantFault,
    InfluxOutage,
    RogueWriter,
    ServiceFault,
    ToxicFault,
    WeatherFault,
)
from harness.scenario.host_faults import ClockSkew, DiskFull
from harness.scenario.rules import FaultTimes, armed_at_start, fault_times, tied_to_step
from pipeline.common.events import MEASUREMENT
from pipeline.common.line_protocol import escape_tag, string_field
from simulators.home_assistant.server import FakeHomeAssistant

if TYPE_CHECKING:
    from .state import RunState

Heal = Callable[[], Awaitable[None]]
HEALTHY_TIMEOUT_S = 60.0
ROGUE_STATE = "rogue-writer"


@dataclass
class _Active:
    fault: Fault
    heal: Heal | None
    label: str


@dataclass
class FaultInjector:
    state: RunState
    runtime: Runtime
    ha: FakeHomeAssistant | None  # None against a live Home Assistant: no ha_* faults
    client: httpx.AsyncClient
    production_db: str
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _active: dict[int, _Active] = field(default_factory=dict)
    _during: dict[int, list[asyncio.Task[None]]] = field(default_factory=dict)
    failure: BaseException | None = None
    _n: int = 0

    # -- scheduling -----------------------------------------------------------------------------

    def schedule(self, fault: Fault) -> asyncio.Task[None]:
        """From now: wait ``at``, inject, and heal after ``for`` (if given)."""
        return self._spawn(self._lifecycle(fault, fault_times(fault, self.state.time_scale)))

    def arm(self, faults: list[Fault]) -> None:
        """The scenario's own ``faults:`` list; those tied to a traffic step wait for it."""
        for fault in armed_at_start(faults):
            self.schedule(fault)

    def traffic_started(self, percent: int, faults: list[Fault]) -> None:
        self._during[percent] = [self.schedule(f) for f in tied_to_step(faults, percent)]

    async def traffic_ended(self, percent: int) -> None:
        """Heal what was tied to this step (a fault with its own ``for`` may end sooner)."""
        for task in self._during.pop(percent, []):
            task.cancel()
        await asyncio.gather(*self._during_heals(), return_exceptions=True)

    def _during_heals(self) -> list[Awaitable[None]]:
        done = [key for key, a in self._active.items() if a.fault.during is not None]
        return [self._heal(key) for key in done]

    async def heal_all(self) -> None:
        """Cancel what has not happened yet and heal what is in force."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for key in list(self._active):
            await self._heal(key)
        if self.runtime.fault_proxy is not None:
            # A dead proxy is reported by its own service, not here.
            with contextlib.suppress(Exception):
                await self.runtime.fault_proxy.reset()

    def raise_if_failed(self) -> None:
        if self.failure is not None:
            failure, self.failure = self.failure, None
            raise RuntimeFailed(f"fault injection failed: {failure}") from failure

    # -- internals ----------------------------------------------------------------------------

    # Plan seconds -> real seconds, for _home_assistant and _weather (the lifecycle uses
    # rules.fault_times instead).
    def _scaled(self, seconds: float) -> float:
        return self.state.scenario.scaled(seconds, self.state.time_scale)

    def _for(self, fault: Fault) -> float | None:
        return None if fault.for_ is None else self._scaled(fault.for_)

    def _spawn(self, coro: Awaitable[None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _lifecycle(self, fault: Fault, times: FaultTimes) -> None:
        key = None
        try:
            if times.at_s > 0:
                await asyncio.sleep(times.at_s)
            key = await self._inject(fault, times)
            if times.lasts_s is not None and key is not None:
                await asyncio.sleep(times.lasts_s)
                await self._heal(key)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the step runner raises it on the next tick
            self.state.mark("fault", f"FAILED {fault.describe()}: {exc}")
            self.failure = exc

    async def _inject(self, fault: Fault, times: FaultTimes) -> int | None:
        self._n += 1
        key = self._n
        label = fault.describe()
        self.state.mark("fault", f"{label}{times.suffix()}")
        heal = await self._apply(fault, key)
        if heal is not None:
            self._active[key] = _Active(fault, heal, label)
        return key if heal is not None else None

    async def _heal(self, key: int) -> None:
        active = self._active.pop(key, None)
        if active is None or active.heal is None:
            return
        await active.heal()
        self.state.mark("fault", f"healed: {active.label}")

    async def _apply(self, fault: Fault, key: int) -> Heal | None:
        """Inject ``fault``; return how to heal it (None: nothing to undo)."""
        if isinstance(fault, ToxicFault):
            return await self._toxic(fault, key)
        if isinstance(fault, ServiceFault):
            return await self._service(fault)
        if isinstance(fault, InfluxOutage):
            await self.runtime.stop("influxdb")
            return self._restarter(["influxdb"])
        if isinstance(fault, HomeAssistantFault):
            return await self._home_assistant(fault)
        if isinstance(fault, WeatherFault):
            return await self._weather(fault)
        if isinstance(fault, RogueWriter):
            await self._rogue_write(fault.points)
            return None
        if isinstance(fault, ClockSkew):
            return await self._clock_skew(fault)
        if isinstance(fault, DiskFull):
            return await self._disk_full(fault)
        raise AssertionError(fault)

    async def _clock_skew(self, fault: ClockSkew) -> Heal:
        """Every target's wall clock off by ``offset`` (real seconds: a clock's error is not a
        span of the plan, so time_scale leaves it alone); healed by setting it back to 0."""
        rt = self.runtime
        for service in fault.service:
            await rt.set_clock_offset(service, fault.offset)

        async def true_time() -> None:
            for service in fault.service:
                await rt.set_clock_offset(service, 0.0)
        return true_time

    async def _disk_full(self, fault: DiskFull) -> Heal:
        """A filler takes every free byte of each target's small disk; healed by removing it.
        The marker says how much it took: a filler of 0 bytes means the disk was full already."""
        rt = self.runtime
        taken = {}
        for service in fault.service:
            taken[service] = await rt.fill_disk(service)
        self.state.mark("fault", "disk_full: filler took " + ", ".join(
            f"{n / 2**20:.1f} MiB of {s}'s disk" for s, n in taken.items()))

        async def emptied() -> None:
            for service in fault.service:
                await rt.free_disk(service)
        return emptied

    async def _toxic(self, fault: ToxicFault, key: int) -> Heal:
        proxy = self.runtime.fault_proxy
        if proxy is None:
            raise RuntimeFailed(f"{fault.kind} on {fault.hop} needs the fault proxy, which this "
                                "run was started without")
        if fault.kind == "down":
            await proxy.set_enabled(fault.hop, False)
            return lambda: proxy.set_enabled(fault.hop, True)
        name = f"{fault.kind}_{fault.stream}_{key}"
        await proxy.add_toxic(fault.hop, name, fault.kind, stream=fault.stream,
                              toxicity=fault.toxicity, attributes=fault.attributes())
        return lambda: proxy.remove_toxic(fault.hop, name)

    async def _service(self, fault: ServiceFault) -> Heal | None:
        rt = self.runtime
        services = list(fault.service)
        action = {"kill": rt.kill, "stop": rt.stop, "pause": rt.pause, "restart": rt.restart,
                  "disconnect": rt.disconnect}[fault.kind]
        for service in services:
            await action(service)
        if fault.kind in ("kill", "stop"):
            return self._restarter(services)
        if fault.kind == "pause":
            async def resume() -> None:
                for service in services:
                    await rt.resume(service)
            return resume
        if fault.kind == "disconnect":
            async def reconnect() -> None:
                for service in services:
                    await rt.reconnect(service)
            return reconnect
        return None  # a restart heals itself

    def _restarter(self, services: Sequence[ServiceName]) -> Heal:
        async def restart() -> None:
            for service in services:
                await self.runtime.start(service)
            await asyncio.gather(*(self.runtime.wait_healthy(s, HEALTHY_TIMEOUT_S)
                                   for s in services))
        return restart

    async def _home_assistant(self, fault: HomeAssistantFault) -> Heal | None:
        ha = self.ha
        if ha is None:  # refused when the scenario was checked (harness.live.rules)
            raise AssertionError(f"{fault.kind} needs the fake Home Assistant")
        if fault.kind == "ha_drop":
            await ha.drop_connections(abort=fault.abort)
        elif fault.kind == "ha_restart":
            await ha.restart(downtime=self._scaled(fault.downtime))
        elif fault.kind == "ha_stall":
            lasts = self._for(fault) or self._scaled(10.0)
            ha.stall(lasts)
        elif fault.kind == "ha_malformed":
            ha.send_malformed_frame(fault.frame)
        elif fault.kind == "ha_refuse":
            await ha.refuse_connections(self._for(fault) or self._scaled(10.0))
        elif fault.kind == "ha_revoke_token":
            old = ha.config.token
            await ha.revoke_token(secrets.token_urlsafe(16))

            async def restore() -> None:
                ha.config.token = old  # the services' configured token works again
            return restore
        return None

    async def _weather(self, fault: WeatherFault) -> Heal:
        base = self.runtime.url("weather")
        lasts = self._for(fault)
        spec: dict[str, object]
        if fault.kind == "weather_slow":
            spec = {"delay_s": fault.delay}
        elif fault.kind == "weather_errors":
            spec = {"error_status": fault.status, "error_fraction": fault.error_rate}
        else:
            spec = {"down": True, "down_s": min(3600.0, lasts or 3600.0)}
        r = await self.client.put(f"{base}/_faults", json=spec, timeout=5)
        if r.status_code >= 400:
            raise RuntimeFailed(f"weather API refused the fault {spec}: HTTP {r.status_code} "
                                f"{r.text[:200]}")

        async def clear() -> None:
            await self.client.put(f"{base}/_faults", json={}, timeout=5)
        return clear

    async def _rogue_write(self, points: int) -> None:
        """Overwrite the state of the newest production points (same series, same time)."""
        url = self.runtime.url("influxdb")
        q = (f'SELECT "state", "domain", "entity_id", "event_type" FROM "{MEASUREMENT}" '  # noqa: S608 - a constant and an int
             f"WHERE time > now() - 5m ORDER BY time DESC LIMIT {points}")
        r = await self.client.get(f"{url}/query", params={"db": self.production_db, "q": q,
                                                          "epoch": "ns"}, timeout=10)
        r.raise_for_status()
        lines = []
        for result in r.json().get("results", []):
            for series in result.get("series", []):
                cols = {c: i for i, c in enumerate(series["columns"])}
                for row in series["values"]:
                    tags = "".join(f",{k}={escape_tag(row[cols[k]])}"
                                   for k in ("domain", "entity_id", "event_type")
                                   if row[cols[k]])
                    lines.append(f"{MEASUREMENT}{tags} state={string_field(ROGUE_STATE)} "
                                 f"{row[cols['time']]}")
        if not lines:
            raise RuntimeFailed("rogue_writer: production holds no point from the last 5 "
                                "minutes to overwrite; place the fault after some traffic")
        w = await self.client.post(f"{url}/write", params={"db": self.production_db},
                                   content="\n".join(lines).encode(), timeout=10)
        if w.status_code != 204:
            raise RuntimeFailed(f"rogue_writer: InfluxDB answered {w.status_code}: {w.text}")
        self.state.mark("fault", f"rogue_writer overwrote {len(lines)} point(s)")
