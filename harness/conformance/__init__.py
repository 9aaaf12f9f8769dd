"""Conformance runs: a pipeline's services against CONTRACT.md, clause by clause."""
