"""The model's small parts against what they copy or claim: the breaker against the pipeline's,
the defaults against the services' settings, the latency fit and mixture against samples, the
routing share against the ownership hash, Wilson's interval against known values."""

from __future__ import annotations

import math
import random

import pytest

from pipeline.common.breaker import CircuitBreaker
from pipeline.common.routing import RoutingEntry, RoutingTable
from pipeline.enrichment.settings import EnrichmentSettings
from pipeline.ingestion.settings import IngestionSettings
from pipeline.legacy.settings import LegacySettings
from pipeline.storage.settings import StorageSettings
from simulators.des.breaker import Breaker
from simulators.des.latency import ShiftedLogNormal, bin_of, bin_value, mixture_quantile
from simulators.des.montecarlo import wilson
from simulators.des.params import ModelParams
from simulators.des.routing import OwnershipShares, RoutingPlan


def test_breaker_answers_as_the_pipelines_on_the_same_calls() -> None:
    rng = random.Random(5)
    now = [0.0]
    ours = Breaker(5, 2.0, clock=lambda: now[0])
    theirs = CircuitBreaker(5, 2.0, clock=lambda: now[0])
    for _ in range(5000):
        now[0] += rng.choice((0.0, 0.01, 0.3, 1.0, 2.5))
        op = rng.random()
        if op < 0.4:
            assert ours.allow() == theirs.allow()
        elif op < 0.7:
            ours.record_failure()
            theirs.record_failure()
        elif op < 0.9:
            ours.record_success()
            theirs.record_success()
        assert ours.state == theirs.state.value
        assert ours.retry_after() == pytest.approx(theirs.retry_after())


def test_defaults_are_the_services_settings() -> None:
    p = ModelParams()
    ing = IngestionSettings(ha_token="x")
    leg = LegacySettings(ha_token="x")
    enr = EnrichmentSettings()
    sto = StorageSettings()
    assert (p.http.batch, p.http.breaker_failures, p.http.breaker_reset_s) == \
        (ing.forward_batch, ing.breaker_failures, ing.breaker_reset_s)
    assert (p.http.batch, p.http.breaker_failures, p.http.breaker_reset_s) == \
        (enr.batch_size, enr.breaker_failures, enr.breaker_reset_s)
    assert p.commit_max_group == ing.commit_max_group
    assert (p.client.backoff_base, p.client.down_after_s, p.client.stalled_after_s) == \
        (ing.ha_backoff_base_s, ing.ha_down_after_s, ing.stalled_after_s)
    assert (p.legacy.max_buffer, p.legacy.batch_size, p.legacy.flush_interval,
            p.legacy.write_retries, p.legacy.retry_backoff, p.legacy.influx_timeout,
            p.legacy.shutdown_flush_s) == \
        (leg.legacy_buffer, leg.legacy_batch_size, leg.legacy_flush_interval_s,
         leg.legacy_write_retries, leg.legacy_retry_backoff_s, leg.influx_timeout_s,
         leg.shutdown_flush_s)
    assert (p.storage.max_batch, p.storage.flush_interval, p.storage.retry_cap,
            p.storage.unreachable_after_s, p.storage.stalled_after_s) == \
        (sto.max_batch, sto.flush_interval_s, sto.retry_cap_s, sto.unreachable_after_s,
         sto.stalled_after_s)
    assert p.storage.enrichment_stall_s == enr.health_stall_s


def test_fit_goes_through_the_three_quantiles() -> None:
    for p50, p95, p99 in ((0.0207, 0.0238, 0.0289), (0.0038, 0.0077, 0.0115),
                          (0.010, 0.050, 0.200)):
        d = ShiftedLogNormal.fit(p50, p95, p99)
        assert d.quantile(50) == pytest.approx(p50, rel=1e-6)
        assert d.quantile(95) == pytest.approx(p95, rel=1e-6)
        assert d.quantile(99) == pytest.approx(p99, rel=1e-3)
    with pytest.raises(ValueError, match="p50 <= p95"):
        ShiftedLogNormal.fit(0.02, 0.01)


def test_mixture_quantile_matches_sampling() -> None:
    rng = random.Random(3)
    dist = ShiftedLogNormal.fit(0.004, 0.008, 0.012)
    waits = {0.0: 900, 0.5: 60, 3.0: 40}  # D seconds: weight
    bins: dict[int, float] = {}
    samples = []
    for d, w in waits.items():
        bins[bin_of(d)] = bins.get(bin_of(d), 0) + w
        samples += [d + dist.shift + math.exp(rng.gauss(dist.mu, dist.sigma))
                    for _ in range(w * 20)]
    samples.sort()
    parts = [(dist, bin_value(b), w) for b, w in bins.items()]
    for q in (50, 80, 93, 98, 99.5):  # away from the clusters' edges (90%, 96%)
        want = samples[math.ceil(q / 100 * len(samples)) - 1]
        assert mixture_quantile(parts, q) == pytest.approx(want, rel=0.05, abs=0.002)
    assert bin_value(bin_of(1.234)) == pytest.approx(1.234, rel=0.02)


def test_ownership_share_is_the_fleets_bucket_share() -> None:
    ids = [f"sensor.s{i}" for i in range(1000)]
    shares = OwnershipShares(ids)
    table = RoutingTable(entries=(RoutingEntry(effective_from_ns=0, new_percent=25),))
    owned = sum(1 for e in ids if table.owner(e, 1) == "new") / len(ids)
    assert shares.share(25) == pytest.approx(owned)
    assert shares.share(0) == 0.0 and shares.share(100) == 1.0


def test_routing_changes_take_effect_after_the_lead() -> None:
    plan = RoutingPlan(lead=1.0)
    plan.change(10.0, new_percent=25)
    plan.change(10.5, shadow=True)
    assert plan.entry_at(10.9) is None
    assert plan.entry_at(11.0).new_percent == 25 and not plan.entry_at(11.0).shadow
    assert plan.entry_at(11.5).shadow and plan.entry_at(11.5).new_percent == 25


def test_wilson_interval() -> None:
    lo, hi = wilson(0, 30)
    assert lo == 0.0 and hi == pytest.approx(0.1135, abs=5e-4)
    lo, hi = wilson(30, 30)
    assert hi == pytest.approx(1.0) and lo == pytest.approx(0.8865, abs=5e-4)
    lo, hi = wilson(5, 10)
    assert (lo, hi) == (pytest.approx(0.2366, abs=5e-4), pytest.approx(0.7634, abs=5e-4))
