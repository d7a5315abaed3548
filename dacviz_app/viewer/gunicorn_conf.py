"""gunicorn settings the Procfile names (``-c python:dacviz_app.viewer.gunicorn_conf``) and
``python -m dacviz_app`` uses: the master starts the query encoder service
(``query_service``) for $DACVIZ_CACHE before it forks the web workers, which find it
through the environment they inherit, and stops it when it exits."""
from __future__ import annotations

import os

_started: dict = {}  # the master's own handle on the service it started (never in a worker)


def on_starting(_server) -> None:
    from dacviz_app import query_service

    cache_dir = os.environ.get("DACVIZ_CACHE")
    if cache_dir and "process" not in _started:
        _started["process"] = query_service.start(os.path.abspath(cache_dir))


def on_exit(_server) -> None:
    from dacviz_app import query_service

    query_service.stop(_started.pop("process", None))
