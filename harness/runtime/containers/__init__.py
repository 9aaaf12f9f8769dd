"""The containers runtime: images built here from the repo, services run by testcontainers."""
