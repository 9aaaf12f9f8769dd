"""FAILURE_MODES.md #12, lossy normalisation: "on" stored as "True", "0" as "False".

enrichment-pipeline "normalises" states that look boolean into Python's spelling of a bool
(``str(bool)``-style): ``on``/``true``/``1`` become ``True``, ``off``/``false``/``0`` become
``False``. The event still arrives and is stored, but not as Home Assistant sent it, and
``"0"`` (a sensor at zero) is now indistinguishable from a switch that is off. Caught by the
consistency check of ``state`` against the ledger (shadow first, then production).

Run in enrichment's place: ``python -m tests.mutants.m12_lossy_normalisation``.
"""

from __future__ import annotations

from pipeline.common.events import Event
from pipeline.enrichment.__main__ import main
from pipeline.enrichment.enricher import Enriched, Enricher

_TRUE = {"on", "true", "yes", "1"}
_FALSE = {"off", "false", "no", "0"}
_enrich = Enricher.enrich


def _as_bool_text(state: str | None) -> str | None:
    if state is not None and state.lower() in _TRUE:
        return "True"
    if state is not None and state.lower() in _FALSE:
        return "False"
    return state


def enrich_normalising(self: Enricher, event: Event, now_ns: int) -> Enriched:
    out = _enrich(self, event, now_ns)
    # BUG: a "tidy-up" of boolean-looking states.
    normalised = out.event.model_copy(update={"state": _as_bool_text(out.event.state),
                                              "old_state": _as_bool_text(out.event.old_state)})
    return Enriched(normalised, out.weather, out.new_flags)


Enricher.enrich = enrich_normalising  # type: ignore[method-assign]

if __name__ == "__main__":
    main()
