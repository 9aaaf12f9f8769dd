"""legacy (port 8000): the monolith before the migration: Home Assistant -> memory -> InfluxDB."""
