"""Tests of pipeline/common: config, breaker, HTTP client and forwarder, routing, service kit."""
