"""The page's callbacks, one module per feature; each decorated callback is thin (named
arguments, the logic in ``page_state`` and ``panels``). A click travels clickData -> clip id ->
neighbour rows from the cache's table -> a small highlight payload drawn over all four views
by the browser + the audio element: no figure is rebuilt or patched on a click."""
from __future__ import annotations

from dacviz_app.cache import Cache
from dacviz_app.explore.groups import ViewGroups
from dacviz_app.viewer.callbacks import clientside, link, maps, measures, selection, side


def register(app, cache: Cache, view_groups: ViewGroups) -> None:
    """Attach every callback of the page to ``app`` for ``cache``; ``view_groups``: the app's
    memoised colour groups (the /clip-at route reads the same)."""
    for feature in (link, selection, maps, side, measures, clientside):
        feature.register(app, cache, view_groups)
