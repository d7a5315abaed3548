"""/sound on the demo cache: the memo on a full disk."""
from __future__ import annotations


def test_a_full_disk_costs_the_memo_one_log_line_and_the_answer_is_still_sent(demo_cache, monkeypatch, caplog,
                                                                             tmp_path):
    import errno
    import logging
    import tempfile

    from dacviz_app.viewer.app import create_app

    def full(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # a memo of its own: no other test's entry
    server = create_app(demo_cache[0]).server
    monkeypatch.setattr(tempfile, "mkstemp", full)
    caplog.set_level(logging.WARNING, logger="dacviz")
    answer = server.test_client().get("/sound/11?q=0")
    assert answer.status_code == 200 and answer.json["spectrogram"]
    lines = [r for r in caplog.records if r.name == "dacviz"]
    assert len(lines) == 1 and "No space left on device" in lines[0].getMessage()
    assert lines[0].exc_info is None  # one line, no traceback
