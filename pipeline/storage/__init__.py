"""data-storage: accepts event batches, writes them durably to InfluxDB, serves them back."""
