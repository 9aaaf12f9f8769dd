"""A fake OpenWeatherMap "current weather" API, with faults the harness switches on and off.

``GET /data/2.5/weather?lat=..&lon=..&appid=..&units=metric`` answers the JSON OpenWeatherMap
answers (coord, weather[], main{}, wind{}, clouds{}, dt, sys{}, timezone, id, name, cod 200).
The values are a pure function of (seed, location, time): a seasonal and daily cycle plus slow
seeded waves, so they drift plausibly (a few tenths of a degree per ten minutes) and two runs
with the same seed and clock answer the same thing.

Faults, for proving that a slow or broken weather API never delays or drops an event
(FAILURE_MODES.md #13), are held by `WeatherFaults`:

- ``slow(delay_s)``: every weather request waits ``delay_s`` before it is answered;
- ``errors(status=500, fraction=1.0)``: that fraction of requests answers ``status``;
- ``rate_limit(retry_after_s=60)``: every request answers 429 with ``Retry-After``;
- ``down(seconds=None)``: stop listening (new connections are refused) and cut the open ones;
- ``clear()``: all of the above off, listening again.

A harness in the same process holds the object (``server.faults``); one in another process
sends ``PUT /_faults`` with the whole fault set as JSON (``{}`` clears; ``down_s`` must be a
duration there, since a server that stopped listening can no longer be told to come back).
``GET /_faults`` and ``GET /_stats`` (requests per outcome) are never subject to faults.

Standalone: ``python -m simulators.weather --port 8090 --api-key KEY --seed 1``.

Where each part lives: ``model`` (the weather itself) and ``physics`` (its formulas), ``owm``
(OpenWeatherMap's JSON), ``faults``, ``config``, ``app`` (the HTTP API), ``server`` (listening,
going down and coming back) and ``__main__`` (the standalone process).
"""
