"""The checks behind a verdict: what InfluxDB holds, accounted against the ledger."""
