"""Serve a dacviz cache on this machine: python -m dacviz_app --cache DIR (installed as
dacviz-serve). It runs the production server the Procfile runs (gunicorn with gevent workers)
and, beside it, the encoder service that answers query by voice (one process, the only one that
loads torch), quietly: one line when it is ready, errors only. --dev runs Flask's development
server instead (with the encoder service too).

examples:
  python -m dacviz_app --cache cache/demo                  # http://localhost:8050/
  python -m dacviz_app --cache cache/demo --host 0.0.0.0   # reachable from the network
  python -m dacviz_app --cache cache/demo --port 9000 --workers 4
"""
from __future__ import annotations

import argparse
import os
import sys


def parse_args(argv: list[str] | None):
    invoked = os.path.basename(sys.argv[0])
    parser = argparse.ArgumentParser(
        prog=invoked if invoked == "dacviz-serve" else "python -m dacviz_app", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", required=True, help="cache directory made by precompute.py")
    parser.add_argument("--port", type=int, default=8050, help="port to listen on (default 8050)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="interface to listen on (default 127.0.0.1: this machine only; "
                             "0.0.0.0 to reach it from the network)")
    parser.add_argument("--workers", type=int, default=2,
                        help="gunicorn worker processes (default 2, as the Procfile)")
    parser.add_argument("--dev", action="store_true",
                        help="Flask's development server instead of gunicorn (one process)")
    return parser.parse_args(argv)


def serve_with_gunicorn(cache_dir: str, host: str, port: int, workers: int) -> None:
    """gunicorn as the Procfile runs it (gevent workers), in this process, logging warnings only."""
    from gunicorn.app.base import BaseApplication

    class Server(BaseApplication):
        def load_config(self):
            from dacviz_app.viewer import gunicorn_conf

            settings = {"bind": f"{host}:{port}", "workers": max(1, workers),
                        "worker_class": "gevent", "worker_connections": 1000, "timeout": 120,
                        "loglevel": "warning", "accesslog": None,
                        "on_starting": gunicorn_conf.on_starting, "on_exit": gunicorn_conf.on_exit}
            os.environ["DACVIZ_CACHE"] = cache_dir
            for name, value in settings.items():
                self.cfg.set(name, value)

        def load(self):  # in each worker: the cache opened read-only there (nothing shared)
            from dacviz_app.viewer.wsgi import server
            return server

    Server().run()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from dacviz_app.cache import CacheError, open_cache

    try:  # a bad cache fails here, once, with one clear line (the app is built in each worker)
        open_cache(args.cache)
    except CacheError as err:
        print(f"dacviz: {err}", file=sys.stderr)
        return 2
    shown = "localhost" if args.host in ("127.0.0.1", "0.0.0.0") else args.host
    print(f"dacviz is serving {args.cache} at http://{shown}:{args.port}/  (Ctrl-C to stop)", flush=True)
    if args.dev:
        from dacviz_app import query_service
        from dacviz_app.viewer.app import create_app

        encoder = query_service.start(os.path.abspath(args.cache))
        try:
            create_app(args.cache).run(host=args.host, port=args.port, debug=False)
        finally:
            query_service.stop(encoder)
    else:
        serve_with_gunicorn(os.path.abspath(args.cache), args.host, args.port, args.workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
