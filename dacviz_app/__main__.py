"""Development / laptop server: ``python -m dacviz_app --cache DIR [--port N] [--host H]``
(installed as ``dacviz-serve``)."""
from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    invoked = os.path.basename(sys.argv[0])
    parser = argparse.ArgumentParser(
        prog=invoked if invoked == "dacviz-serve" else "python -m dacviz_app", description=__doc__)
    parser.add_argument("--cache", required=True, help="cache directory made by precompute.py")
    parser.add_argument("--port", type=int, default=8050)
    parser.add_argument("--host", default="127.0.0.1",
                        help="interface to listen on (0.0.0.0 to reach it from the network)")
    args = parser.parse_args(argv)
    from .core.cache import CacheError
    from .ui.app import create_app

    try:
        app = create_app(args.cache)
    except CacheError as err:
        print(f"dacviz: {err}", file=sys.stderr)
        return 2
    shown = "localhost" if args.host in ("127.0.0.1", "0.0.0.0") else args.host
    print(f"dacviz is serving {args.cache} at http://{shown}:{args.port}/  (Ctrl-C to stop)", flush=True)
    app.run(host=args.host, port=args.port, debug=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
