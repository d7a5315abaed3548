"""dacviz: see and hear what a neural audio codec hears.

``dacviz_app.core`` computes (no Dash); ``dacviz_app.ui`` shows (no torch). This module imports
neither.
"""
__version__ = "0.1.0"
