"""Monte Carlo beyond one process: the runs spread over a Dask cluster.

A local cluster of ``workers`` processes (one thread each: the model is pure Python, so threads
would share one core), or an existing cluster at ``scheduler`` (``tcp://host:8786``), whose
workers must have this project installed at the same version. Each run's seed comes from its
index alone (``seed + i``), and the outcomes are put back in index order, so the summary is the
one a single process computes, whichever worker ran what and in whatever order they finished.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from .model import SimOptions, simulate
from .outcome import Outcome

__all__ = ["ClusterSpec", "run_on_cluster"]


@dataclass(frozen=True, slots=True)
class ClusterSpec:
    """Where the runs go: ``scheduler`` (an address) wins; else a local cluster of ``workers``."""

    workers: int | None = None
    scheduler: str | None = None

    def describe(self) -> str:
        if self.scheduler:
            return f"on the Dask cluster at {self.scheduler}"
        return f"on a local Dask cluster of {self.workers} worker processes"


def run_on_cluster(scenario: Any, options: SimOptions, runs: int, spec: ClusterSpec,
                   progress: Callable[[int, Outcome], None] | None = None) -> list[Outcome]:
    """The ``runs`` outcomes, in run order (seeds ``options.seed + i``)."""
    # Imported here: a single-process simulation needs no Dask.
    from distributed import Client, LocalCluster, as_completed

    if spec.scheduler:
        client = Client(spec.scheduler, timeout="30s")
        cluster = None
    else:
        cluster = LocalCluster(n_workers=spec.workers, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.ERROR)
        client = Client(cluster)
    try:
        shared = client.scatter(scenario, broadcast=True)  # sent once, not with every run
        futures = {client.submit(simulate, shared, replace(options, seed=options.seed + i),
                                 pure=False, key=f"simulate-{options.seed + i}-{i}"): i
                   for i in range(runs)}
        outcomes: list[Outcome | None] = [None] * runs
        for done, future in enumerate(as_completed(futures)):
            outcome: Outcome = future.result()  # a run that raised raises here, with its trace
            outcomes[futures[future]] = outcome
            if progress is not None:
                progress(done, outcome)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return [o for o in outcomes if o is not None]
