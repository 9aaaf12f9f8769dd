"""enrichment-pipeline (port 8002): events from ingestion in, weather and validation flags on,
batches out to data-storage; a durable outbox between the two so nothing is lost while
storage is away, and a weather cache refreshed in the background so a slow or failing weather
API never delays an event (FAILURE_MODES.md #13)."""
