"""Code every app shares, with no wiring of its own (the wiring is in `config/`).

Here: the domain errors (`errors.py`) and OpenAI's error object (`openai_errors.py`), counters and
locks in the shared cache (`shared_state.py`), giving the database connection back before a long wait
(`connections.py`), text no surface stores (`text.py`), the bounded child process for untrusted input
(`sandbox.py`), the URL path fragments (`paths.py`) and the admin pages' shared mixin (`admin.py`); the
metrics (`metrics.py`), the log formats and their ids (`logs.py`), the readiness checks (`health.py`) and the
worker's heartbeat (`worker_heartbeat.py`, its row in `models.py`, `manage.py run_worker`).
`core/api/` holds the DRF and async-view helpers and the health endpoints.
"""
