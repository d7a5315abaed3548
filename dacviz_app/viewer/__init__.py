"""The Dash app over one cache (never torch): ``app`` builds it, ``routes`` serves audio, sound,
clicks and queries, ``layout`` and ``figures`` draw, ``callbacks`` wire the page, ``page_state``
reads a link, ``memo`` shares sound summaries between workers, ``report`` writes the offline page;
``serve`` (python -m dacviz_app), ``wsgi`` and ``gunicorn_conf`` start it."""
