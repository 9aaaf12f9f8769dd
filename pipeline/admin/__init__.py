"""admin-api (port 8003): progress-aware health over every service, recent events, and the
migration control plane that legacy and the new pipeline follow (pipeline.common.routing)."""
