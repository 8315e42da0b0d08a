"""Durable runs: each answer is a run owned by the server process, with a numbered event log that
every surface reads and can resume (docs/runs.md)."""
