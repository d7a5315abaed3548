"""The Dash app over one cache (never torch): ``app`` builds it and its routes (audio, sound,
clicks, queries), ``layout`` and ``figures`` draw, ``callbacks`` wire the page (one module per
feature), ``page_state`` holds the page's logic that routes and callbacks share, ``panels`` the
side panels, ``memo`` shares sound summaries between workers, ``report`` writes the offline page;
``serve`` (python -m dacviz_app), ``wsgi`` and ``gunicorn_conf`` start it."""
