"""The view table: the projections every representation gets, listed once.

Each row is one view of the page and one projection in the cache: its name (the file name
under ``arrays/<rep>/`` and the page's ``view-<name>`` id), the method that makes it, its
dimension and its title. The pipeline projects by it, the cache validates by it, the figures,
the metrics table, the text report and the page's script (which receives it as JSON in the
page) read it. Add a row here and every one of them has the new view.

A metrics row's ``space`` is a view name or FULL_SPACE (the representation's own vectors).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class View:
    """One projection of a representation, drawn as one view.

    Attributes:
        name: 'pca2'... used as the cache's file name and the page's element id.
        method: 'pca' or 'tsne' (the pipeline's projector).
        dim: 2 or 3, the number of coordinates per clip.
        title: 'PCA 2D', as the page and the report write it.
        axis: the axis titles' stem, 'PC' gives 'PC 1', 'PC 2'...
    """

    name: str
    method: str
    dim: int
    title: str
    axis: str

    @property
    def axis_titles(self) -> tuple[str, ...]:
        return tuple(f"{self.axis} {i + 1}" for i in range(self.dim))


VIEWS: tuple[View, ...] = (
    View("pca2", "pca", 2, "PCA 2D", "PC"),
    View("pca3", "pca", 3, "PCA 3D", "PC"),
    View("tsne2", "tsne", 2, "t-SNE 2D", "t-SNE"),
    View("tsne3", "tsne", 3, "t-SNE 3D", "t-SNE"),
)
VIEW_NAMES: tuple[str, ...] = tuple(v.name for v in VIEWS)
FULL_SPACE = "full"
_BY_NAME = {v.name: v for v in VIEWS}


def view(name: str) -> View:
    """The row of view ``name``; KeyError for a name that is not in the table."""
    return _BY_NAME[name]


def is_view(name) -> bool:
    return isinstance(name, str) and name in _BY_NAME


def space_title(space: str) -> str:
    """'full space' for FULL_SPACE, the view's title for a view name."""
    return "full space" if space == FULL_SPACE else _BY_NAME[space].title if space in _BY_NAME else space


def page_table() -> list[dict]:
    """The table as the page's script receives it: [{"name", "method", "dim", "title", "axis"}]."""
    return [asdict(v) for v in VIEWS]
