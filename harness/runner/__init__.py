"""Runs a scenario: phases and steps in order, a monitor scraping every second, gates and
rollback triggers evaluated continuously, then the verdict and the report."""
