"""``cutover``: the command line.

Bad input exits 2 with one line saying what is expected (click's usage banner is left out:
the line is what a person needs).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click
import pydantic

from harness.scenario.durations import parse_duration
from simulators.home_assistant.limits import MAX_ENTITIES
from simulators.home_assistant.load import LoadProfile, parse_profile

if TYPE_CHECKING:
    from harness.pipeline_file import PipelineSpec

# The installed distribution (pyproject.toml's [project] name): --version reports its metadata.
DISTRIBUTION = "ha-cutover"
DURATIONS = "a duration like 30s, 5m, 250ms, 2h, 8d, or a number of seconds"


def _profile_option(ctx: click.Context, param: click.Parameter,
                    value: str | None) -> LoadProfile | None:
    if value is None:
        return None
    try:
        return parse_profile(value)
    except (ValueError, pydantic.ValidationError) as exc:
        raise click.BadParameter(_one_line(exc), ctx=ctx, param=param) from None


def _one_line(exc: Exception) -> str:
    if isinstance(exc, pydantic.ValidationError):
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        return f"{where}: {err['msg']}" if where else err["msg"]
    return str(exc).splitlines()[0]


def _pipeline_option(ctx: click.Context, param: click.Parameter,
                     value: Path | None) -> PipelineSpec | None:
    from harness.errors import PipelineFileError
    from harness.pipeline_file import load_pipeline

    if value is None:
        return None
    try:
        return load_pipeline(value)
    except PipelineFileError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


def _clause_option(ctx: click.Context, param: click.Parameter,
                   value: tuple[str, ...]) -> tuple[str, ...]:
    from harness.conformance.clauses import select_clauses
    from harness.errors import InvalidInput

    try:
        select_clauses(value)
    except InvalidInput as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None
    return value


PIPELINE_HELP = ("A pipeline file (CONTRACT.md): the services to drive and how to start them "
                 "[default: the shipped ones, harness/pipeline_file/reference.yaml].")


class DurationType(click.ParamType[float, object]):
    """A duration as scenario files write them (harness/scenario/durations.py): ``30s``,
    ``5m``, ``250ms``, ``2h``, ``8d``; a bare number is seconds. In seconds, at least
    ``minimum``."""

    name = "duration"

    def __init__(self, minimum: float = 0.0) -> None:
        self.minimum = minimum

    def convert(self, value: object, param: click.Parameter | None,
                ctx: click.Context | None) -> float:
        if isinstance(value, float):  # a default, already in seconds
            return value
        try:
            seconds = parse_duration(str(value).strip())
        except ValueError as exc:
            message = _one_line(exc)
            # parse_duration's own message says what is accepted, except when it is too long
            self.fail(message if "expected" in message else f"{message} ({DURATIONS})",
                      param, ctx)
        if seconds < self.minimum or seconds == 0:
            least = f"at least {self.minimum:g}s" if self.minimum else "above 0"
            self.fail(f"{value!r} ({seconds:g} s): must be {least}", param, ctx)
        return seconds


@click.group()
@click.version_option(package_name=DISTRIBUTION, prog_name="cutover",
                      message="%(prog)s %(version)s")
def cli() -> None:
    """ha-cutover: prove a Home Assistant ingestion migration loses nothing."""


@cli.command("fake-ha")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", type=click.IntRange(0, 65535), default=8123, show_default=True,
              help="Port to serve /api/websocket on (0 picks a free one).")
@click.option("--token", default=None,
              help="The long-lived access token clients must send  [default: a fresh random "
                   "one, printed at start-up].")
@click.option("--entities", type=click.IntRange(1, MAX_ENTITIES), default=500, show_default=True,
              help="Number of entities in the fleet.")
@click.option("--rate", "profile", default="20/s", show_default=True, callback=_profile_option,
              help="Load: '20/s', '1200/min', or a profile such as 'ramp:10/s..200/s:60', "
                   "'step:10/s*30,100/s*30', 'spike:20/s,500/s@30+10', 'burst:5000,then=20/s', "
                   "'soak:50/s:3600', 'replay:events.jsonl@2x'.")
@click.option("--seed", type=int, default=1, show_default=True,
              help="Seed for the fleet and its changes (same seed, same events).")
@click.option("--ledger", "ledger_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None,
              help="Where to write the ledger (default: reports/fake-ha-<time>/ledger.jsonl).")
def fake_ha(host: str, port: int, token: str | None, entities: int, profile: LoadProfile | None,
            seed: int, ledger_path: Path | None) -> None:
    """Serve a fake Home Assistant until Ctrl-C, with a live status line."""
    from harness.commands.fake_ha import serve_fake_ha

    asyncio.run(serve_fake_ha(host=host, port=port, token=token, entities=entities,
                              profile=profile, seed=seed, ledger_path=ledger_path))


@cli.command()
@click.option("--duration", "--seconds", "seconds", type=DurationType(minimum=1), default=10.0,
              metavar="DURATION",
              help="How long the subscriber listens: 30s, 2m, ... (a number is seconds)  "
                   "[default: 10s].")
@click.option("--rate", "profile", default="50/s", show_default=True, callback=_profile_option,
              help="Load profile of the fake Home Assistant (as for fake-ha).")
@click.option("--entities", type=click.IntRange(1, MAX_ENTITIES), default=200, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--report-dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("reports"), show_default=True)
def demo(seconds: float, profile: LoadProfile | None, entities: int, seed: int,
         report_dir: Path) -> None:
    """Run the fake Home Assistant with one subscriber and show what was emitted and received."""
    from harness.commands.demo import run_demo

    ok = asyncio.run(run_demo(seconds=seconds, profile=profile, entities=entities, seed=seed,
                              report_dir=report_dir))
    sys.exit(0 if ok else 1)


def _named_scenario(arg: str) -> Path | None:
    """A path, or the name of a file in scenarios/ (with or without .yaml); None: neither."""
    path = Path(arg)
    if path.exists():
        return path
    for candidate in (Path("scenarios") / arg, Path("scenarios") / f"{arg}.yaml"):
        if candidate.exists():
            return candidate
    return None


def _resolve_scenario(arg: str) -> Path:
    """A path, or the name of a file in scenarios/ (with or without .yaml)."""
    path = _named_scenario(arg)
    if path is not None:
        return path
    raise click.BadParameter(f"{arg!r}: no such file, and no scenarios/{arg}.yaml "
                             "(`cutover list` shows the scenarios)", param_hint="SCENARIO")


@cli.command()
@click.argument("scenarios", nargs=-1, required=True)
@click.option("--runtime", type=click.Choice(["auto", "process", "containers"]), default="auto",
              show_default=True, help="Where the pipeline runs.")
@click.option("--time-scale", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Multiply plan durations (default: each scenario's own time_scale).")
@click.option("--report-dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("reports"), show_default=True)
@click.option("--ha-url", default=None, metavar="URL",
              help="Run against a live Home Assistant (ws://HOST:8123/api/websocket) instead "
                   "of the fake; its events are watched, never generated.")
@click.option("--ha-token-env", default=None, metavar="VAR",
              help="The environment variable holding a long-lived access token for --ha-url "
                   "(the token itself is never taken on the command line, nor shown).")
@click.option("--pipeline", type=click.Path(dir_okay=False, path_type=Path), default=None,
              metavar="FILE", callback=_pipeline_option, help=PIPELINE_HELP)
def run(scenarios: tuple[str, ...], runtime: str, time_scale: float | None,
        report_dir: Path, ha_url: str | None, ha_token_env: str | None,
        pipeline: PipelineSpec | None) -> None:
    """Run scenario files; exit 0 when every verdict passes, 1 when one fails, 2 on bad input."""
    from harness.commands.run import live_target, run_many

    paths = [_resolve_scenario(s) for s in scenarios]
    live = live_target(ha_url, ha_token_env)
    sys.exit(asyncio.run(run_many(paths, runtime=runtime, time_scale=time_scale,
                                  report_dir=report_dir, live=live, pipeline=pipeline)))


@cli.command("list")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              default=Path("scenarios"), show_default=True)
@click.option("--json", "as_json", is_flag=True,
              help="One JSON array on stdout: each scenario's name, path, description, tags, "
                   "phases, expects and runtimes.")
def list_scenarios(directory: Path, as_json: bool) -> None:
    """The scenario files: name (never cut), what they expect, tags, description. Exit 1 when
    a file is broken (its errors on stderr), 2 when there is none."""
    from harness.commands.listing import list_command

    sys.exit(list_command(directory, as_json=as_json))


@cli.command()
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
def validate(files: tuple[str, ...]) -> None:
    """Check scenario files (paths, or names in scenarios/ as for run) without running
    anything: every error and warning of every file, as FILE:LINE: error|warning: MESSAGE,
    then a summary. Exit 0 when no file has an error (warnings allowed), 2 otherwise."""
    from harness.commands.validate import validate_files

    # A name that is neither a file nor in scenarios/ is checked as the path it is: its
    # "no such scenario file" is one of the problems, and the other files are still checked.
    paths = [_named_scenario(f) or Path(f) for f in files]
    sys.exit(validate_files(paths, say=click.echo))


@cli.command()
def schema() -> None:
    """Print the JSON Schema (Draft 2020-12) of scenario files as they are written: point
    your editor's YAML support at it."""
    import json

    from harness.scenario.schema import scenario_json_schema

    click.echo(json.dumps(scenario_json_schema(), indent=2))


@cli.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
def report(run_dir: Path) -> None:
    """Render a run's HTML report again from its run.json."""
    from harness.report import ReportError, render_run_dir

    try:
        click.echo(render_run_dir(run_dir))
    except ReportError as exc:
        raise click.BadParameter(str(exc), param_hint="RUN_DIR") from None


@cli.command()
@click.argument("scenario")
@click.option("--time-scale", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Multiply plan durations (holds, fault at/for) by this  [default: 1, the "
                   "plan as written]. Use the scenario's own time_scale to compare with a "
                   "real run of it.")
@click.option("--duration", default=None, metavar="DURATION",
              help="Stretch the plan so its holds last this long in all, instead of "
                   "--time-scale: full_migration's holds add up to 42 min, so 8d multiplies "
                   "every hold and traffic step by 274.")
@click.option("--scale-load", default=None, metavar="X|RATE",
              help="Multiply the load: a factor (100, 0.5, 100x), or the rate the scenario's "
                   "base load becomes (17/min, 1000/s); load profiles keep their shape. "
                   "Without it the load is the file's, in events per second of the run (the "
                   "shipped files' rates are written for real runs, e.g. 50/s).")
@click.option("--seed", type=int, default=1, show_default=True,
              help="Seed of every random draw (same seed, same outcome). With --runs N the "
                   "runs use seeds SEED..SEED+N-1.")
@click.option("--calibration", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="A calibration file from `cutover calibrate` (default: the built-in one, "
                   "fitted to a process-runtime run).")
@click.option("--runs", type=click.IntRange(min=1), default=1, show_default=True,
              help="Monte Carlo: run N seeds and report the probability that each trigger "
                   "fires and that any event is lost, with 95% (Wilson) intervals.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="With --runs: spread the runs over a local Dask cluster of K worker "
                   "processes (the same figures as one process, sooner).")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="With --runs: spread the runs over an existing Dask cluster "
                   "(tcp://host:8786) whose workers have this project installed.")
@click.option("--mtbf", multiple=True, metavar="SERVICE=DURATION",
              help="Random crashes: mean time between failures of a service (legacy, "
                   "ingestion, enrichment, storage, admin, influxdb), e.g. storage=2h. "
                   "Repeatable; each needs its --mttr. (A calibration file's "
                   "'reliability' section sets them too; these win.)")
@click.option("--mttr", multiple=True, metavar="SERVICE=DURATION",
              help="Mean time to repair after a random crash, e.g. storage=30s.")
@click.option("--report-dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("reports"), show_default=True)
def simulate(scenario: str, time_scale: float | None, duration: str | None,
             scale_load: str | None, seed: int, calibration: Path | None, runs: int,
             workers: int | None, scheduler: str | None,
             mtbf: tuple[str, ...], mttr: tuple[str, ...], report_dir: Path) -> None:
    """Run a scenario in simulated time (SimPy model) and write the same verdict and report,
    marked simulated. Exit 0 pass, 1 fail, 2 bad input (with --runs: 0 once the table is out).

    \b
    Examples:
      cutover simulate full_migration --duration 8d --scale-load 17/min
      cutover simulate load_spike --scale-load 10x --runs 50
      cutover simulate phase3_traffic_switch --time-scale 0.02 --calibration cal.json
      cutover simulate full_migration --mtbf storage=2h --mttr storage=30s --runs 20
      cutover simulate load_soak --runs 24 --seed 3 --workers 2
    """
    from harness.commands.simulate import run_simulate

    sys.exit(run_simulate(_resolve_scenario(scenario), seed=seed, time_scale=time_scale,
                          duration=duration, scale_load=scale_load, calibration=calibration,
                          runs=runs, report_dir=report_dir, mtbf=mtbf, mttr=mttr,
                          workers=workers, scheduler=scheduler))


@cli.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("calibration.json"), show_default=True,
              help="Where to write the calibration (JSON, versioned).")
def calibrate(run_dir: Path, output: Path) -> None:
    """Fit the simulator from a real run's directory (run.json, metrics.jsonl): latency per
    path, service times and batch sizes, start-up times."""
    from harness.commands.calibrate import run_calibrate

    sys.exit(run_calibrate(run_dir, output))


@cli.command()
@click.option("--force", is_flag=True,
              help="Start cold: debootstrap, download the wheels and build again.")
def images(force: bool) -> None:
    """Build the container images unless the engine has them (by content hash); say why."""
    from harness.runtime.containers.command import images_command

    sys.exit(images_command(force=force))


def _rate_text(ctx: click.Context, param: click.Parameter, value: str) -> str:
    _profile_option(ctx, param, value)  # validated; the scenario takes the text
    return value


def _service_modules(ctx: click.Context, param: click.Parameter,
                     value: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for item in value:
        service, sep, module = item.partition("=")
        if not sep or not service or not module:
            raise click.BadParameter(f"{item!r}: expected SERVICE=MODULE, e.g. "
                                     "storage=tests.chaos.broken_storage", ctx=ctx, param=param)
        out[service] = module
    return out


@cli.command()
@click.option("--seed", type=int, default=None,
              help="Seed of the schedule (default: a random one, always printed).")
@click.option("--duration", type=DurationType(minimum=20), default=None, metavar="DURATION",
              help="Real time of migration the faults are drawn over: 60s, 5m, ... (a number "
                   "is seconds; at least 20s)  [default: 60s].")
@click.option("--runtime", type=click.Choice(["auto", "process", "containers"]), default="auto",
              show_default=True, help="Where the pipeline runs.")
@click.option("--vocabulary", default=None, metavar="KINDS",
              help="Comma-separated fault kinds to draw from (default: kill, restart, pause, "
                   "disconnect, latency, down, influxdb_outage, ha_restart, ha_drop, "
                   "weather_slow, weather_errors; also stop, weather_down).")
@click.option("--faults", type=click.IntRange(min=0), default=None,
              help="How many faults (default: drawn, about one per 8 s of migration).")
@click.option("--max-shrinks", type=click.IntRange(min=0), default=20, show_default=True,
              help="At most this many more runs to shrink a failing schedule (every try "
                   "counted; the original's reruns are not).")
@click.option("--shrink-tries", type=click.IntRange(min=1), default=2, show_default=True,
              help="Runs a schedule must fail in, every one, to count as failing while "
                   "shrinking; the original is run again first, and not shrunk when a rerun "
                   "passes. 1: trust a single failure.")
@click.option("--replay", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Run a saved schedule (schedule.json / minimal.json) instead of drawing one.")
@click.option("--dry-run", is_flag=True,
              help="Print the schedule (as JSON on stdout, for --replay) and run nothing.")
@click.option("--rate", default="50/s", show_default=True, callback=_rate_text,
              help="Load profile of the fake Home Assistant (as for fake-ha).")
@click.option("--report-dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("reports"), show_default=True)
@click.option("--service-module", "service_modules", multiple=True, hidden=True,
              callback=_service_modules, metavar="SERVICE=MODULE",
              help="Run MODULE in SERVICE's place (a mutant from tests/; processes only).")
@click.option("--pipeline", "pipeline_file", type=click.Path(dir_okay=False, path_type=Path),
              default=None, metavar="FILE", help=PIPELINE_HELP)
def chaos(seed: int | None, duration: float | None, runtime: str, vocabulary: str | None,
          faults: int | None, max_shrinks: int, shrink_tries: int, replay: Path | None,
          dry_run: bool, rate: str, report_dir: Path, service_modules: dict[str, str],
          pipeline_file: Path | None) -> None:
    """A migration under a random, reproducible schedule of faults; on a failed verdict, shrink
    it to a minimal failing schedule. Exit 0 all survived, 1 failed, 2 bad input."""
    from harness.commands.chaos import chaos_command

    sys.exit(asyncio.run(chaos_command(
        seed=seed, duration=duration, runtime=runtime, vocabulary=vocabulary, faults=faults,
        max_shrinks=max_shrinks, shrink_tries=shrink_tries, report_dir=report_dir,
        replay=replay, dry_run=dry_run, rate=rate, service_modules=service_modules,
        pipeline_file=pipeline_file)))

@cli.command()
@click.option("--pipeline", type=click.Path(dir_okay=False, path_type=Path), default=None,
              metavar="FILE", callback=_pipeline_option, help=PIPELINE_HELP)
@click.option("--runtime", type=click.Choice(["process", "containers"]), default="process",
              show_default=True, help="Where the services run.")
@click.option("--report-dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("reports"), show_default=True)
@click.option("--clause", "clauses", multiple=True, metavar="ID", callback=_clause_option,
              help="Check only this clause (CONTRACT.md's id, e.g. C4); repeatable. "
                   "[default: every clause]")
def conformance(pipeline: PipelineSpec | None, runtime: str, report_dir: Path,
                clauses: tuple[str, ...]) -> None:
    """Check a pipeline's services against CONTRACT.md, clause by clause (one line each, with
    its evidence); exit 0 only when every clause checked holds, 1 when one breaks, 2 on bad
    input."""
    from harness.conformance.run import run_conformance
    from harness.console import make_console
    from harness.pipeline_file import reference_pipeline

    verdicts = asyncio.run(run_conformance(pipeline or reference_pipeline(), runtime=runtime,
                                           report_dir=report_dir, clauses=clauses,
                                           console=make_console(stderr=False)))
    sys.exit(0 if verdicts and all(v.passed for v in verdicts) else 1)


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="cutover", standalone_mode=False)
    except click.UsageError as exc:
        where = f"cutover {exc.ctx.info_name}" if exc.ctx and exc.ctx.parent else "cutover"
        click.echo(f"{where}: {exc.format_message()}", err=True)
        sys.exit(2)
    except click.Abort:
        sys.exit(130)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
