"""A SimPy model of the migration: the same scenario files in simulated time.

``cutover simulate`` runs a scenario here instead of against real services, so a plan can be
rehearsed at production scale and over its whole length (8 days at 17 events/min simulate in a
few seconds, an hour at 1,000 events/s in about ten) and with random failures, and the answer
can be trusted because it is checked against real runs (tests/des/test_against_real.py).

The topology is the real one (``model.py`` wires it):

- ``source.py``: the fake Home Assistant's load profiles (``simulators.home_assistant.load``,
  fired by the Pacer's rule) and one websocket connection per client with Home Assistant's
  back-pressure (closed at 4,096 pending messages, or 10 s at 1,024 or more) and the clients'
  reconnect backoff;
- the services, one module each: ``legacy.py`` (bounded in-memory buffer, batch writes,
  retries then drops), ``ingestion.py`` (group commit into a durable outbox),
  ``enrichment.py`` and ``storage.py`` (durable queues), ``influx.py``; each a server
  (``service.py``: the lifecycle they share) with a service-time distribution
  (``per_batch + per_event * n``, log-normal), batching (``queues.py``), retries with jittered
  backoff and the circuit breaker (``forwarder.py``, ``breaker.py``); ``services.py``: the
  services by name and the start / stop / kill / pause actions on them; ``network.py``: the
  hops and their faults;
- ``routing.py``: ownership by the fleet's entity hashes, changes announced ``lead`` ahead;
- ``faults.py``: the scenario's faults and random failures from MTBF / MTTR;
- ``monitor.py`` / ``triggers.py``: the harness's monitor and its rollback triggers and gates,
  computed as the real runner computes them; ``plan.py``: the phases and steps;
- ``calibration.py``: the figures fitted from a real run; ``montecarlo.py``: N seeds.

Each part is handed the Environment and the objects it uses (``model.py`` wires them;
``ports.py`` names, as Protocols, what a part needs of one it must not import;
``timeline.py`` holds the run's state, its markers and the monitor's pokes), so the imports
form a DAG and no part reaches another through the ``Model``.

How it stays fast (design, not tuning):

- Arrivals are micro-batches. Each tick of the source (about 5 events: 20 ms at 250 events/s
  and above, up to 250 ms at low rates, up to 10 s for plans whose holds last hours) fires one
  job per client carrying a count; every stage moves jobs, splitting one only at a batch
  limit. A job costs about a dozen SimPy events whatever it carries, so an hour at 1,000
  events/s is 180,000 jobs, and counts (emitted, stored, lost) stay exact.
- Latency is not sampled per event. An event's latency is ``L + D``: ``L`` the path's
  calibrated unloaded latency (a shifted log-normal), ``D`` the waiting the model computed for
  its job (queues, retries, breaker, outages). Each path keeps a histogram of ``D`` weighted by
  events; percentiles are solved from that mixture (``latency.py``), exactly and in O(1) per
  job.
- An idle writer's wake-up and its batch window are one scheduled event, not two.
- The monitor ticks each second as the real one does, but while nothing is failing, waiting or
  in flight it sleeps until the next timeline sample (at most a minute) or until anything that
  could change a trigger's mind pokes it (a fault, a failed request, a state change, a load
  change). A short run never skips a tick.

Time: plan durations (holds, traffic holds, a fault's ``at``/``for``) are multiplied by the
time scale (1 by default: the plan as written; ``--duration`` stretches the plan to a length;
``--time-scale`` matches a real run's scale). The services' own constants (batch windows,
timeouts, breaker cool-down, back-pressure) and the monitor's windows are seconds, never
scaled; load profiles are read as the real runner plays them (rates per second, their ``at``
and ``duration`` in seconds of the run).

Everything random draws from one ``random.Random(seed)``, made by the Model and handed to the
parts that draw: a seed makes a run reproducible. This package imports the pipeline's data
contracts (the ownership hash) and the fake Home Assistant's fleet and load profiles, never
the harness; the harness turns an ``Outcome`` into a judged ``RunResult`` and report
(``harness/simulation.py``).
"""

from .model import Model, SimOptions, simulate
from .outcome import Outcome

__all__ = ["Model", "Outcome", "SimOptions", "simulate"]
