"""python -m dacviz_app --cache DIR: serve a cache (``viewer.serve``; installed as dacviz-serve)."""
import sys

from dacviz_app.viewer.serve import main

if __name__ == "__main__":
    sys.exit(main())
