"""Shared building blocks of the pipeline services: config, HTTP between services, routing,
service kit, events, storage."""
