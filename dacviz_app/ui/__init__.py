"""The Dash viewer. Reads the cache only through ``dacviz_app.core.cache``; never imports torch."""
