"""Repository-wide pytest wiring: shared fixtures live in tests/fixtures/, one module per
real part."""

pytest_plugins = [
    "tests.fixtures.influx",
    "tests.fixtures.fake_ha",
    "tests.fixtures.services",
    "tests.fixtures.real_ha",
]
