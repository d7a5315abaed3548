"""The find box over every column (``analysis.find_clips``) on a small collection with a column of
its own: which columns matched is said, a label that is also an id is reachable."""
from __future__ import annotations

from types import SimpleNamespace

from dacviz_app.explore import analysis


def collection():
    clips = {"id": list(range(6)), "label": ["7", "7", "0", "0", "7", "1"],
             "speaker": ["ann", "bob", "ann", "bob", "cy", "cy"],
             "source": ["7_ann_0.wav", "7_bob_0.wav", "0_ann_7.wav", "0_bob_1.wav", "7_cy_0.wav", "1_cy_0.wav"],
             "duration_s": [0.5] * 6, "audio": [f"audio/{i}.wav" for i in range(6)],
             "original_rate": [8000] * 6, "channels": [1] * 6,
             "csv_room": ["A", "B", "A", "B", "A", "1"]}

    def clip_or_none(value):
        try:
            value = int(value)
        except (TypeError, ValueError):
            return None
        return value if 0 <= value < 6 else None
    return SimpleNamespace(clips=clips, n_clips=6, clip_or_none=clip_or_none)


def test_every_column_is_searched_and_named():
    cache = collection()
    found = analysis.find_clips(cache, "1")
    # id 1, label "1", the collection's own column "1"; not channels=1 (dacviz's own), not the
    # file names that merely contain a 1 (a whole value matched)
    assert found.clips == [1, 5] and found.matched == [("id", "1", 1), ("label", "'1'", 1), ("csv_room", "'1'", 1)]
    assert found.summary() == "2 found: id 1 (1) · label '1' (1) · csv_room '1' (1)"
    assert analysis.find_clips(cache, "7").clips == [0, 1, 4]  # no clip 7: the label is found
    assert analysis.find_clips(cache, "label=0").clips == [2, 3]  # the id 0 is not asked
    assert analysis.find_clips(cache, "id:0").clips == [0]
    assert analysis.find_clips(cache, "A").matched == [("csv_room", "'A'", 3)]
    assert analysis.find_clips(cache, "BOB").clips == [1, 3]
    part = analysis.find_clips(cache, "ann_")
    assert part.clips == [0, 2] and part.matched == [("source", "contains 'ann_'", 2)]
    assert analysis.find_clips(cache, "8000").total == 0  # the rate dacviz read is not metadata
    assert analysis.find_clips(cache, "nope=7").clips == []  # not a column: the whole text is looked for
