"""WSGI entry for gunicorn (see Procfile): ``server`` serves the cache named by $DACVIZ_CACHE."""
from __future__ import annotations

import os
import sys

from dacviz_app.cache import CacheError
from dacviz_app.viewer.app import create_app

_cache_dir = os.environ.get("DACVIZ_CACHE")
if not _cache_dir:
    sys.exit("dacviz: set DACVIZ_CACHE to a cache directory made by precompute.py")
try:
    server = create_app(_cache_dir).server
except CacheError as err:
    sys.exit(f"dacviz: cannot serve {_cache_dir}: {err}")
