"""SLOs measured against their thresholds, and the verdict against the scenario's expectation.

Units follow the thresholds: latency in seconds, rates as fractions, throughput in events/s.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.checks.accounting import Accounting
from harness.results import EventFinding, Rollback, SloResult, Verdict
from harness.scenario.model import Scenario, Threshold
from harness.scenario.rules.measures import is_latency
from simulators.home_assistant.ledger import ConnectionRecord


@dataclass(frozen=True, slots=True)
class RunFigures:
    """What the monitor measured over the whole run."""

    error_rate: float
    availability: float
    throughput_eps: float
    perf_drop: float | None  # None when there was no legacy baseline to compare with


@dataclass(frozen=True, slots=True)
class Interruption:
    """A run stopped by a signal before its plan finished: what the verdict says instead."""

    by: str  # "Ctrl-C (SIGINT)", "SIGTERM"
    at_s: float  # since the run started
    where: str  # "phase canary, during the hold step"
    accounted: bool  # InfluxDB was read back (not when a second signal skipped it)
    drained: bool  # the pipeline stored what it held before the accounting

    def __str__(self) -> str:
        return f"{self.by} at {self.at_s:.1f} s in {self.where}"


def measure(threshold: Threshold, acc: Accounting, figures: RunFigures) -> tuple[float | None, str]:
    """The measured value for a threshold's metric, and a note when it cannot be measured."""
    metric = threshold.metric
    counts = acc.counts
    if is_latency(metric):
        stats = acc.latency.get("production")
        if stats is None or stats.count == 0:
            return None, "no event was stored, so there is no latency to measure"
        pct = float(metric[1:])
        value_ms = {50.0: stats.p50_ms, 95.0: stats.p95_ms, 99.0: stats.p99_ms}.get(pct)
        if value_ms is None:
            return None, f"p({metric[1:]}) is not computed: use p(50), p(95) or p(99)"
        return value_ms / 1000, ""
    if metric == "loss":
        return float(counts.lost), ""
    if metric == "duplicated":
        return float(counts.duplicated), ""
    if metric == "inconsistent":
        return float(counts.inconsistent), ""
    if metric == "error_rate":
        return figures.error_rate, ""
    if metric == "availability":
        return figures.availability, ""
    if metric == "throughput":
        return figures.throughput_eps, ""
    if metric == "perf_drop":
        if figures.perf_drop is None:
            return None, "no legacy baseline ran beside the new pipeline"
        return figures.perf_drop, ""
    return None, f"unknown metric {metric}"


def evaluate_slos(scenario: Scenario, acc: Accounting, figures: RunFigures) -> list[SloResult]:
    results = []
    for threshold in scenario.slos:
        measured, note = measure(threshold, acc, figures)
        results.append(SloResult(threshold=threshold.text, metric=threshold.metric,
                                 target=threshold.value, measured=measured,
                                 passed=measured is not None and threshold.holds(measured),
                                 note=note))
    return results


def _ids(findings: list[EventFinding], n: int = 5) -> str:
    def one(f: EventFinding) -> str:
        where = filter(None, (f.context, f"phase {f.phase}", f"path {f.path}"))
        return f"{f.event} ({', '.join(where)})"
    shown = ", ".join(one(f) for f in findings[:n])
    return shown + (" ..." if len(findings) > n else "")


def _data_reasons(acc: Accounting) -> list[str]:
    c, f = acc.counts, acc.findings
    reasons = []
    if c.lost:
        reasons.append(f"{c.lost} event(s) lost: {_ids(f.lost)}")
    if c.duplicated:
        reasons.append(f"{c.duplicated} event(s) duplicated: {_ids(f.duplicated)}")
    if c.unexpected:
        reasons.append(f"{c.unexpected} unexpected event(s) in the database: {_ids(f.unexpected)}")
    if c.inconsistent:
        details = "; ".join(f"{x.event}: {x.detail}" for x in f.inconsistent[:3])
        reasons.append(f"{c.inconsistent} event(s) stored inconsistently: {details}")
    return reasons


def backpressure_drops(connections: list[ConnectionRecord], started_ns: int) -> list[str]:
    """The ledger's back-pressure disconnects, in words: Home Assistant dropping a client that
    fell behind also drops what it had queued for it (FAILURE_MODES.md #13)."""
    return [f"Home Assistant dropped connection {r.connection} for back-pressure at "
            f"{(r.at_ns - started_ns) / 1e9:.1f} s ({r.info.get('why', '?')}, "
            f"{r.info.get('dropped', '?')} queued message(s) dropped)"
            for r in connections if r.what == "backpressure"]


def dead_letter_notes(held: dict[str, int]) -> list[str]:
    """Where events that are not in InfluxDB may be kept instead: each service's dead letters,
    with where to read why (a receiver's refusal one by one, a point InfluxDB refused)."""
    return [f"{service} dead-lettered {count:,} event(s); its log says why "
            "(\"refused by the receiver\" or \"dead-lettered\")"
            for service, count in sorted(held.items())]


def expectation_text(scenario: Scenario) -> str:
    e = scenario.expect
    text = "SLOs met" if e.verdict == "pass" else "SLOs broken"
    if e.rollback == "triggered":
        text += f", rollback triggered{' by ' + e.reason if e.reason else ''}"
    else:
        text += ", no rollback"
    return text


def decide(scenario: Scenario, acc: Accounting, slos: list[SloResult], rollback: Rollback,
           aborted: str | None = None, evidence: list[str] | None = None, *,
           interrupted: Interruption | None = None) -> Verdict:
    """Compare what happened with what the scenario expects, and say it in words.

    ``evidence``: what else the run saw that explains a failure (`backpressure_drops`,
    `dead_letter_notes`), named after the data findings. ``interrupted``: the plan did not
    finish, so there is no verdict on the expectation, only what was measured so far."""
    if interrupted is not None:
        return _interrupted(acc, rollback, aborted, interrupted)
    reasons: list[str] = []
    if aborted:
        reasons.append(f"the run could not complete: {aborted}")
    slos_met = all(s.passed for s in slos)
    failed = [s for s in slos if not s.passed]
    expect = scenario.expect
    if expect.verdict == "pass" and not slos_met:
        for s in failed:
            reasons.append(f"SLO {s.threshold} not met: measured "
                           f"{_fmt(s.metric, s.measured)}{' (' + s.note + ')' if s.note else ''}")
        reasons.extend(_data_reasons(acc))
        reasons.extend(evidence or [])
    if expect.verdict == "fail" and slos_met:
        reasons.append("the scenario expects its SLOs to be broken, but every SLO was met")
    if expect.rollback == "triggered" and not rollback.triggered:
        reasons.append(f"a rollback{' by ' + expect.reason if expect.reason else ''} was "
                       "expected but no trigger fired")
    if expect.rollback == "not_triggered" and rollback.triggered:
        reasons.append(f"rollback triggered by {rollback.trigger}: {rollback.evidence}")
    if (expect.rollback == "triggered" and rollback.triggered and expect.reason
            and rollback.trigger != expect.reason):
        reasons.append(f"rollback was triggered by {rollback.trigger}, expected {expect.reason} "
                       f"({rollback.evidence})")
    passed = not reasons
    story = _story(acc, rollback)
    summary = (f"PASSED ({expectation_text(scenario)}): {story}." if passed else
               f"FAILED: {reasons[0]}. {story}.")
    return Verdict(passed=passed, summary=summary, reasons=reasons)


def _story(acc: Accounting, rollback: Rollback) -> str:
    c = acc.counts
    unsubscribed = (f" ({c.unsubscribed:,} while nobody was subscribed, {c.recovered:,} of "
                    "them recovered from history)" if c.unsubscribed else "")
    story = (f"{c.emitted:,} events fired{unsubscribed}, "
             f"{c.stored_production:,} in production; lost {c.lost}, duplicated "
             f"{c.duplicated}, unexpected {c.unexpected}, inconsistent {c.inconsistent}")
    if rollback.triggered:
        story += f"; rollback by {rollback.trigger} at {rollback.at_s:.1f} s ({rollback.evidence})"
    return story


def _interrupted(acc: Accounting, rollback: Rollback, aborted: str | None,
                 stop: Interruption) -> Verdict:
    """Not passed, and not a failure of the pipeline either: the expectation (SLOs over the
    whole plan, a rollback still to come) cannot be judged, only the events fired so far."""
    reasons = [(f"interrupted by {stop}, before the plan finished: the scenario's "
                "expectation was not judged")]
    if aborted:
        reasons.append(f"the run could not complete: {aborted}")
    if not stop.accounted:
        reasons.append("nothing was read back from InfluxDB (interrupted before it ran, or a "
                       "second signal skipped the accounting): only the events fired are known")
        story = f"{acc.counts.emitted:,} events fired, not accounted"
    else:
        reasons.extend(_data_reasons(acc))
        if not stop.drained and acc.counts.lost:
            reasons.append("the pipeline had not stored everything it held when the drain "
                           "was cut short: some events counted lost may still have been on "
                           "their way")
        story = _story(acc, rollback)
    return Verdict(passed=False, summary=f"INTERRUPTED: by {stop}, before the plan finished. "
                                         f"So far {story}.", reasons=reasons)


def summary_line(name: str, verdict: Verdict) -> tuple[str, str]:
    """The line ``cutover run`` ends a scenario with, as (status word, rest): ``PASSED quick
    (SLOs met, no rollback): ...``, ``FAILED quick: ...``: the status said once, though the
    summary (a pytest item's message too) starts with it."""
    for word in ("PASSED", "FAILED", "INTERRUPTED"):
        if verdict.summary.startswith(word):
            rest = verdict.summary.removeprefix(word).lstrip()
            break
    else:
        word, rest = ("PASSED" if verdict.passed else "FAILED"), verdict.summary
    if rest.startswith(":"):
        return word, f"{name}: {rest[1:].lstrip()}"
    return word, f"{name} {rest}" if rest.startswith("(") else f"{name}: {rest}"


def _fmt(metric: str, value: float | None) -> str:
    if value is None:
        return "nothing"
    if is_latency(metric):
        return f"{value * 1000:.1f} ms"
    if metric in ("error_rate", "availability", "perf_drop"):
        return f"{value * 100:.3g}%"
    if metric == "throughput":
        return f"{value:.1f}/s"
    return f"{value:g}"
