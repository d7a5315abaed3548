"""dacviz: see and hear what a neural audio codec hears.

The packages follow the data's way (docs/architecture.md draws them; tests/unit/test_import_rules.py
keeps each to the layers below it):

- ``precompute``: clips -> a cache (torch: DAC, the other encoders, the run, Ray);
- ``cache``: the format, the one contract between the two halves (writers, the reader);
- ``embedding``: maths on arrays (the view table, neighbours, projections, metrics), no cache;
- ``explore``: maths on a cache that the page asks for (groups, analysis, a query's place, sound);
- ``query_service``: the process that encodes a query by voice (the server's only torch);
- ``viewer``: the Dash app, its routes and callbacks (never torch).

This module imports none of them.
"""
__version__ = "0.1.0"
