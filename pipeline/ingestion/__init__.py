"""websocket-ingestion (port 8001): Home Assistant events -> durable outbox -> enrichment."""
