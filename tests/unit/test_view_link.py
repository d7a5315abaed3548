"""A link's zooms and cameras (view=, ``page_state.parse_views``): what the page writes comes back,
anything else is dropped."""
from __future__ import annotations

from dacviz_app.viewer.page_state import MAX_VIEW_FIELD_CHARS, parse_views


def test_a_zoom_and_a_camera_come_back_for_the_links_representation():
    views = parse_views(["pca2:-5.49,3.58,-2,4.25", "tsne3:1.2,-0.5,0.8,0,0,0.1,0,0,1"], "z_q4")
    assert views == {"pca2": {"rep": "z_q4", "x": [-5.49, 3.58], "y": [-2.0, 4.25]},
                     "tsne3": {"rep": "z_q4", "camera": {"eye": {"x": 1.2, "y": -0.5, "z": 0.8},
                                                         "center": {"x": 0.0, "y": 0.0, "z": 0.1},
                                                         "up": {"x": 0.0, "y": 0.0, "z": 1.0}}}}
    # the last field of a view counts
    assert parse_views(["pca2:0,1,0,1", "pca2:0,2,0,2"], "z")["pca2"]["x"] == [0.0, 2.0]


def test_forged_fields_are_dropped():
    for field in ("pca2:1,2,3", "pca2:0,1,0,1,5", "pca3:0,1,0,1",  # wrong count for the view
                  "pca2:nan,1,0,1", "pca2:0,inf,0,1", "pca2:0,1e9,0,1",  # not finite, beyond bounds
                  "pca2:1,1,0,1",  # an empty range
                  "pca2:a,b,c,d", "nope:0,1,0,1", "pca2", ":0,1,0,1",
                  "pca2:,1,0,1", "pca2:0x10,1,0,1", "pca2:1_0,2,0,1", "pca2: 1,2,0,1", "pca2:inf,1,0,1",
                  "pca2:" + ",".join(["1"] * 200),  # longer than a field is
                  ):
        assert parse_views([field], "z") == {}, field
    assert len("pca2:" + ",".join(["1"] * 200)) > MAX_VIEW_FIELD_CHARS
    assert parse_views([None, 3, "tsne2:0,1,0,1"], "mfcc") == {"tsne2": {"rep": "mfcc", "x": [0.0, 1.0],
                                                                         "y": [0.0, 1.0]}}
