"""Run one scenario end to end and conclude: the fake Home Assistant in this process (or a
live one, watched by the harness's witness), the pipeline in a runtime, the phases in order
under a monitor, then the verdict and the report.

Whatever happens (a failed step, an exception, Ctrl-C) the runtime is closed and the fake Home
Assistant stopped, and a run.json/report.html is still written when there is anything to say.
Ctrl-C or SIGTERM (when the caller installs an `Interrupt`) stops the plan, drains briefly,
accounts what was fired until then and writes a partial result marked interrupted.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
from rich.console import Console

from harness.checks.accounting import Accounting, account
from harness.checks.stored import read_points
from harness.checks.writes import Rewrites
from harness.console import make_console
from harness.errors import ControlPlaneError, PipelineFileError, RuntimeFailed
from harness.live import LiveHomeAssistant, LiveTarget, live_problems
from harness.pipeline_file import PipelineSpec, reference_pipeline
from harness.report import render_run
from harness.report.services import log_excerpt, report_metrics
from harness.results import Counts, Drain, Findings, Rollback, RunResult, ServiceReport, recorded
from harness.runtime.base import Runtime, Wiring
from harness.runtime.select import harness_host, make_runtime
from harness.scenario.model import Phase, Scenario, Step
from harness.scenario.topology import (
    PRODUCTION_DB,
    SERVICES,
    SHADOW_DB,
    WRITER_SERVICE,
)
from pipeline.common.events import EventKey
from pipeline.common.routing import RoutingTable
from simulators.home_assistant.config import ServerConfig
from simulators.home_assistant.fleet import Fleet
from simulators.home_assistant.ledger import Ledger
from simulators.home_assistant.server import FakeHomeAssistant

from .control import ControlPlane
from .drain import QuietPolls
from .faults import FaultInjector
from .fit import unfit
from .home_assistant import FakeSide, HomeAssistantSide
from .interrupt import PLAN, WIND_DOWN, Interrupt
from .monitor import Monitor
from .preparation import host_preparation, scenario_faults
from .progress import LiveProgress
from .state import RunState  # noqa: F401  (re-exported: importers of run.RunState)
from .steps import RollbackTriggered, StepRunner
from .triggers import TriggerState
from .verdict import (
    Interruption,
    RunFigures,
    backpressure_drops,
    dead_letter_notes,
    decide,
    evaluate_slos,
    expectation_text,
)

# After an interrupt the pipeline gets this long to store what it holds: long enough for a
# healthy pipeline's queues to empty, short enough that Ctrl-C still feels like a stop.
INTERRUPTED_DRAIN_S = 10.0


async def run_scenario(scenario: Scenario, *, source: Path | None, runtime: str,
                       time_scale: float | None, report_dir: Path,
                       console: Console | None = None,
                       service_modules: dict[str, str] | None = None,
                       pipeline: PipelineSpec | None = None,
                       fault_proxy: bool | None = None,
                       live: LiveTarget | None = None,
                       interrupt: Interrupt | None = None) -> tuple[RunResult, Path]:
    """Run, judge, report. Returns the result and the run directory (report.html inside).

    ``pipeline``: the services to drive (a pipeline file; default: the shipped ones).
    ``service_modules`` runs another module in a service's place (a mutant from tests/), as
    a pipeline file's command would.
    ``fault_proxy`` routes every hop through the fault proxy; by default only when the
    scenario has a fault that needs it. ``live``: a Home Assistant the harness did not start
    (the scenario must ask nothing of it that only the fake can do: `live_problems`).
    ``interrupt``: the signals that stop this run early (`Interrupt`); by default none does."""
    if live is not None and (problems := live_problems(scenario)):
        raise ValueError(f"scenario {scenario.name} cannot run against a live Home Assistant: "
                         + "; ".join(problems))
    pipeline = pipeline or reference_pipeline()
    if service_modules:
        pipeline = pipeline.with_commands(service_modules)
    if problems := unfit(scenario, pipeline):
        raise PipelineFileError(f"scenario {scenario.name} cannot run on pipeline "
                                f"{pipeline.name!r}: " + "; ".join(problems))
    console = console or make_console(stderr=True)
    interrupt = interrupt or Interrupt()
    scale = scenario.time_scale if time_scale is None else time_scale
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = report_dir / f"{scenario.name}-{stamp}-{secrets.token_hex(2)}"
    run_dir.mkdir(parents=True, exist_ok=True)
    state = RunState(scenario, scale, time.time_ns())
    ledger = Ledger(run_dir / "ledger.jsonl")
    admin_token = secrets.token_urlsafe(16)
    fake: FakeHomeAssistant | None = None
    ha: HomeAssistantSide
    if live is None:
        ha_token = secrets.token_urlsafe(16)
        # The fake listens where the runtime's services can reach it: 127.0.0.1 for processes,
        # the host's address on docker's bridge for containers (containers.runtime.harness_host).
        host = await harness_host(runtime)
        fake = FakeHomeAssistant(ServerConfig(host=host.bind, port=0, token=ha_token),
                                 fleet=Fleet(scenario.fleet), ledger=ledger,
                                 seed=scenario.fleet.seed)
        await fake.start()
        ha, ha_url = FakeSide(fake), host.ha_url(fake.port)
    else:
        # The witness subscribes before any service starts: it is the run's ledger.
        live_ha = LiveHomeAssistant(live, ledger)
        await live_ha.start()
        ha, ha_url, ha_token = live_ha, live.url, live.token
    prepared = host_preparation(scenario)  # clock_skew and disk_full targets start ready for them
    wiring = Wiring(run_dir=run_dir, ha_url=ha_url, ha_token=ha_token,
                    admin_token=admin_token, weather_api_key=secrets.token_hex(8),
                    seed=scenario.fleet.seed, pipeline=pipeline,
                    fault_proxy=needs_fault_proxy(scenario, runtime) if fault_proxy is None
                    else fault_proxy, skewable=prepared.skewable,
                    small_disks=prepared.small_disks)
    rt = make_runtime(runtime, wiring)
    client = httpx.AsyncClient(timeout=10)
    control = ControlPlane(rt.url("admin"), admin_token, client)
    monitor = Monitor(rt, ledger, PRODUCTION_DB, SHADOW_DB, run_dir, state.started_ns,
                      phase=lambda: state.phase,
                      routing=lambda: (state.new_percent, state.shadow),
                      table=lambda: control.last_table)
    aborted: str | None = None
    settled: bool | None = None  # None: no drain ran (or it was cut short)
    cut_short = False  # a signal stopped the plan or its drain: the result is partial
    accounted = True
    table = RoutingTable()
    faults = FaultInjector(state, rt, fake, client, PRODUCTION_DB)
    try:
        try:
            monitor.start()
            steps = StepRunner(state, rt, ha, control, monitor, ledger, TriggerState(), faults)
            with LiveProgress(console, state, monitor, ha) as progress:
                finished, _ = await interrupt.guard(PLAN, _run_plan(scenario, state, steps, ha,
                                                                    progress))
                ha.close_books()
                await faults.heal_all()
                state.load_span[1:] = [state.now_s()]
                if finished:
                    state.mark("note", "load stopped; draining")
                    state.step = "the drain"
                    began, unstored = state.now_s(), _unstored(monitor)
                    # A Ctrl-C during the drain cuts it to the interrupted run's short one.
                    finished, settled = await interrupt.guard(PLAN, _drain(monitor))
                    state.drain = _drained(state, monitor, began, unstored, settled)
                if not finished:
                    cut_short = True
                    drain = (f"draining for at most {INTERRUPTED_DRAIN_S:g} s"
                             if interrupt.count < WIND_DOWN else "no drain")
                    state.mark("note", f"interrupted by {interrupt.description}"
                               f"{' during ' + state.step if state.step else ''}: load "
                               f"stopped; {drain}")
                    began, unstored = state.now_s(), _unstored(monitor)
                    _, settled = await interrupt.guard(WIND_DOWN, _drain(
                        monitor, timeout=INTERRUPTED_DRAIN_S))
                    state.drain = _drained(state, monitor, began, unstored, settled)
            _, served = await interrupt.guard(WIND_DOWN, _final_table(control, rt))
            table = served if served is not None else table
        except (RuntimeFailed, ControlPlaneError, OSError, httpx.HTTPError) as exc:
            aborted = str(exc)
            console.print(f"[red]run aborted:[/] {exc}", highlight=False)
        finally:
            state.end()
            ha.set_profile(None)
            try:
                await faults.heal_all()  # InfluxDB back up, at least, for the accounting
            except Exception as exc:  # noqa: BLE001 - the run is already being judged
                console.print(f"[yellow]could not heal every fault:[/] {exc}", highlight=False)
            await monitor.stop()
        acc = Accounting(Counts(emitted=len(ledger)), Findings(), {}, False)
        if cut_short and not rt.running("influxdb"):
            accounted = False  # interrupted before InfluxDB started: there is nothing to read
        else:
            try:
                accounted, read = await interrupt.guard(WIND_DOWN, _account(
                    rt, ledger, state, table if table.entries else (control.last_table or table),
                    client, _rewrites(monitor)))
                acc = read or acc
                cut_short = cut_short or not accounted  # a second signal skipped it
            except Exception as exc:  # noqa: BLE001 - no data is still a verdict, with the reason
                aborted = aborted or f"could not read InfluxDB: {exc}"
        services = _service_reports(rt, monitor)
    finally:
        # Always, even on Ctrl-C or a bug: no orphan process, no port left bound.
        await rt.close()
        await ha.stop()
        await client.aclose()

    # A signal after the drain (during the accounting or the close) leaves a whole result:
    # judged as usual, though `cutover run` still exits as interrupted.
    stop = _interruption(interrupt, state, accounted, settled) if cut_short else None
    result = _result(scenario, source, runtime, scale, state, acc, monitor, services, aborted,
                     stop)
    result.home_assistant = ha.description
    (run_dir / "run.json").write_bytes(orjson.dumps(result.model_dump(mode="json"),
                                                    option=orjson.OPT_INDENT_2))
    render_run(result, run_dir)
    return result, run_dir


async def _run_plan(scenario: Scenario, state: RunState, steps: StepRunner,
                    ha: HomeAssistantSide, progress: LiveProgress) -> None:
    """The phases in order; on a rollback trigger, the scenario's rollback plan."""
    try:
        for phase in scenario.phases:
            await _run_phase(phase, state, steps, ha, progress)
    except RollbackTriggered as fired:
        state.rollback = Rollback(triggered=True, trigger=fired.firing.trigger,
                                  at_s=round(state.now_s(), 3), evidence=fired.firing.evidence)
        state.mark("rollback", f"rollback: {fired.firing.trigger}")
        state.analysing = False
        state.begin_phase("rollback")
        for step in scenario.rollback or _default_rollback():
            state.step = _step_words(step)
            await steps.run(step)
    state.step = ""


def _step_words(step: Step) -> str:
    """``traffic step`` / ``hold step``: which kind of step was in progress."""
    return f"the {step.kind} step"


def _interruption(interrupt: Interrupt, state: RunState, accounted: bool,
                  settled: bool | None) -> Interruption | None:
    if not interrupt.requested:
        return None
    at_s = (interrupt.at_ns - state.started_ns) / 1e9 if interrupt.at_ns else state.now_s()
    where = f"phase {state.phase_at(interrupt.at_ns or time.time_ns())}" + (
        f", during {state.step}" if state.step else "")
    return Interruption(by=interrupt.description, at_s=max(0.0, at_s), where=where,
                        accounted=accounted, drained=bool(settled))


async def _run_phase(phase: Phase, state: RunState, steps: StepRunner, ha: HomeAssistantSide,
                     progress: LiveProgress) -> None:
    if state.phases:  # the first phase may set up; the load is on by the second at the latest
        await steps.start_load()
    state.begin_phase(phase.name)
    if phase.load is not None:
        steps.load_began()
        ha.set_profile(phase.load)
    for step in phase.steps:
        progress.step(step)
        state.step = _step_words(step)
        await steps.run(step)


def needs_fault_proxy(scenario: Scenario, runtime: str) -> bool:
    """A toxic needs the proxy on any runtime; a partition needs it on processes."""
    from harness.scenario.faults import ServiceFault, ToxicFault

    faults = list(scenario_faults(scenario))
    return any(isinstance(f, ToxicFault) or (
        isinstance(f, ServiceFault) and f.kind == "disconnect" and runtime != "containers")
        for f in faults)


def _default_rollback() -> list[Step]:
    from harness.scenario.model import HoldStep, RollbackStep

    return [RollbackStep(reason="rollback trigger"), HoldStep(duration=60.0)]


async def _drain(monitor: Monitor, timeout: float = 60.0) -> bool:
    """Wait until the pipeline has stored what it holds: queues empty, nothing new stored.
    False: ``timeout`` passed first."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    quiet = QuietPolls()
    if monitor.ticks:
        quiet.observe(monitor.ticks[-1].queue_depth, monitor.ticks[-1].stored)
    while (remaining := deadline - loop.time()) > 0:
        try:  # bounded even when the monitor's scrapes fail and no tick comes
            await asyncio.wait_for(monitor.wait_tick(), timeout=remaining)
        except TimeoutError:
            return False
        last = monitor.ticks[-1]
        if quiet.observe(last.queue_depth, last.stored) or (
                last.unstored == 0 and last.queue_depth == 0):
            return True
    return False


def _unstored(monitor: Monitor) -> int:
    """Events fired to a subscriber that production does not hold yet, at the last scrape."""
    return monitor.ticks[-1].unstored if monitor.ticks else 0


def _drained(state: RunState, monitor: Monitor, began: float, unstored: int,
             settled: bool | None) -> Drain:
    return Drain(start_s=round(began, 3), end_s=round(state.now_s(), 3), unstored_start=unstored,
                 unstored_end=_unstored(monitor), settled=bool(settled))


async def _final_table(control: ControlPlane, rt: Runtime) -> RoutingTable:
    """The routing table every event was decided by: admin-api's, or the last one it served
    (a plan may stop it), or none (legacy owned everything, as services assume)."""
    if rt.running("admin"):
        # Any failure falls back to the last table admin-api served.
        with contextlib.suppress(Exception):
            return await control.table()
    return control.last_table or RoutingTable()


def _rewrites(monitor: Monitor) -> dict[str, Rewrites]:
    """Each writer's own count of keys it wrote again, from its last stats: legacy's, and
    storage's over both databases (the new path)."""
    found: dict[str, Rewrites] = {}
    for path, service in WRITER_SERVICE.items():
        per_db = (monitor.last_stats.get(service) or {}).get("rewrites") or {}
        count = sum(int(r.get("rewritten", 0)) for r in per_db.values())
        first = tuple(EventKey(e, int(t)) for r in per_db.values() for e, t in r.get("first", []))
        if count:
            found[path] = Rewrites(count, first)
    return found


async def _account(rt: Runtime, ledger: Ledger, state: RunState, table: RoutingTable,
                   client: httpx.AsyncClient, rewrites: dict[str, Rewrites]) -> Accounting:
    if not rt.running("influxdb"):
        await rt.start("influxdb")
        await rt.wait_healthy("influxdb", 30)
    url = rt.url("influxdb")
    # The ledger's columns are built while InfluxDB answers (a slice at a time, on this loop).
    production, shadow, _ = await asyncio.gather(
        read_points(client, url, PRODUCTION_DB), read_points(client, url, SHADOW_DB),
        ledger.columns_async())
    return account(ledger, production, shadow, phase_of=state.phase_at,
                   owner_of=lambda e, t: table.owner(e, t), table=table, rewrites=rewrites)


def _service_reports(rt: Runtime, monitor: Monitor) -> list[ServiceReport]:
    reports = []
    for name in SERVICES:
        if not rt.has(name):  # a stage the pipeline file leaves out
            continue
        lines = rt.log_tail(name, 400)
        if not lines:
            continue
        # The report's rules: error lines by their level (not "uvicorn.error"), labelled
        # series too (legacy's drop counters are only labelled).
        metrics = report_metrics(monitor.last_metrics(name))
        reports.append(ServiceReport(name=name, metrics=metrics, log_excerpt=log_excerpt(lines)))
    return reports


def _result(scenario: Scenario, source: Path | None, runtime: str, scale: float,
            state: RunState, acc: Accounting, monitor: Monitor,
            services: list[ServiceReport], aborted: str | None,
            interrupted: Interruption | None = None) -> RunResult:
    duration = state.now_s()
    whole = monitor.window(duration + 1)
    # Throughput over the time the load was on, not the start-up before it.
    span = (state.load_span + [duration, duration])[:2] if state.load_span else [0.0, duration]
    active = max(1e-9, span[1] - span[0])
    figures = RunFigures(
        error_rate=whole.error_rate,
        availability=max(0.0, 1.0 - whole.stalled_seconds / max(1e-9, duration)),
        throughput_eps=acc.counts.stored_production / active,
        perf_drop=whole.perf_drop())
    slos = evaluate_slos(scenario, acc, figures)
    verdict = decide(scenario, acc, slos, state.rollback, aborted,
                     backpressure_drops(monitor.ledger.connections, state.started_ns)
                     + dead_letter_notes(monitor.dead_letters()), interrupted=interrupted)
    phases, markers = recorded(state.phases, state.markers)
    return RunResult(
        scenario=scenario.name, description=scenario.description,
        scenario_file=str(source or ""),
        scenario_text=source.read_text() if source and source.exists() else "",
        runtime=runtime, started_at=datetime.fromtimestamp(state.started_ns / 1e9, UTC).isoformat(),
        duration_s=round(duration, 3), time_scale=scale, verdict=verdict,
        expected=expectation_text(scenario), counts=acc.counts, findings=acc.findings,
        findings_truncated=acc.truncated, slos=slos, latency=acc.latency,
        error_rate=figures.error_rate, availability=figures.availability,
        throughput_eps=figures.throughput_eps, phases=phases, markers=markers,
        timeline=monitor.samples, rollback=state.rollback, services=services,
        interrupted=interrupted is not None, drain=state.drain)
