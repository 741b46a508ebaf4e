"""PlayoutTracker: what the user has actually heard, on injected wall time."""

from __future__ import annotations

import pytest

from palaver.turn import PlayoutTracker


def test_nothing_queued() -> None:
    tracker = PlayoutTracker()
    assert tracker.finished_at() is None
    assert not tracker.speaking(0.0)
    assert tracker.playing_item(0.0) is None
    assert tracker.played_ms("item_x", 0.0) == 0.0
    assert tracker.queued_ms("item_x") == 0.0
    assert tracker.clear(0.0) == {}


def test_faster_than_real_time_queueing_plays_at_real_time() -> None:
    tracker = PlayoutTracker()
    for i in range(10):  # 400 ms of audio produced in 10 ms
        tracker.queued("item_a", 40.0, float(i))
    assert tracker.queued_ms("item_a") == 400.0
    assert tracker.finished_at() == 400.0
    assert tracker.played_ms("item_a", 10.0) == 10.0
    assert tracker.played_ms("item_a", 100.0) == 100.0
    assert tracker.played_ms("item_a", 399.0) == 399.0
    assert tracker.speaking(399.0)
    assert tracker.playing_item(399.0) == "item_a"
    assert tracker.played_ms("item_a", 400.0) == 400.0
    assert not tracker.speaking(400.0)
    assert tracker.played_ms("item_a", 5000.0) == 400.0  # never more than queued


def test_played_grows_with_time() -> None:
    tracker = PlayoutTracker()
    tracker.queued("item_a", 1000.0, 100.0)
    heard = [tracker.played_ms("item_a", t) for t in (100.0, 350.0, 600.0, 1100.0, 1500.0)]
    assert heard == [0.0, 250.0, 500.0, 1000.0, 1000.0]


def test_items_play_back_to_back_in_queue_order() -> None:
    tracker = PlayoutTracker()
    tracker.queued("item_a", 300.0, 0.0)
    tracker.queued("item_b", 200.0, 10.0)
    assert tracker.finished_at() == 500.0
    assert tracker.playing_item(250.0) == "item_a"
    assert tracker.played_ms("item_b", 250.0) == 0.0
    assert tracker.playing_item(300.0) == "item_b"
    assert tracker.played_ms("item_a", 400.0) == 300.0
    assert tracker.played_ms("item_b", 400.0) == 100.0
    assert tracker.played_ms("item_b", 700.0) == 200.0
    assert tracker.playing_item(700.0) is None


def test_interleaved_chunks_play_in_the_order_they_were_queued() -> None:
    tracker = PlayoutTracker()
    tracker.queued("item_a", 100.0, 0.0)
    tracker.queued("item_b", 100.0, 0.0)
    tracker.queued("item_a", 100.0, 0.0)
    assert tracker.playing_item(150.0) == "item_b"
    assert tracker.played_ms("item_a", 250.0) == 150.0
    assert tracker.played_ms("item_b", 250.0) == 100.0


def test_a_gap_pauses_playback_until_new_audio_arrives() -> None:
    tracker = PlayoutTracker()
    tracker.queued("item_a", 100.0, 0.0)
    assert not tracker.speaking(300.0)  # ran dry at 100
    assert tracker.finished_at() == 100.0
    tracker.queued("item_a", 100.0, 500.0)  # the next chunk arrives late
    assert tracker.finished_at() == 600.0
    assert tracker.played_ms("item_a", 500.0) == 100.0
    assert tracker.speaking(550.0)
    assert tracker.played_ms("item_a", 550.0) == 150.0
    assert tracker.played_ms("item_a", 700.0) == 200.0


def test_clear_returns_what_was_heard_and_drops_the_rest() -> None:
    tracker = PlayoutTracker()
    tracker.queued("item_a", 1000.0, 0.0)
    tracker.queued("item_b", 500.0, 5.0)
    assert tracker.clear(400.0) == {"item_a": 400.0, "item_b": 0.0}
    assert not tracker.speaking(400.0)
    assert tracker.finished_at() == 400.0
    assert tracker.played_ms("item_a", 2000.0) == 400.0
    assert tracker.queued_ms("item_a") == 400.0
    assert tracker.queued_ms("item_b") == 0.0
    assert tracker.clear(2000.0) == {}


def test_clear_leaves_out_items_already_heard() -> None:
    tracker = PlayoutTracker()
    tracker.queued("item_a", 200.0, 0.0)
    tracker.queued("item_b", 300.0, 0.0)
    assert tracker.clear(350.0) == {"item_b": 150.0}
    assert tracker.played_ms("item_a", 350.0) == 200.0


def test_clear_counts_earlier_segments_of_a_resumed_item() -> None:
    tracker = PlayoutTracker()
    tracker.queued("item_a", 100.0, 0.0)
    tracker.queued("item_a", 300.0, 200.0)  # after a gap: plays 200..500
    assert tracker.clear(250.0) == {"item_a": 150.0}


def test_audio_after_a_clear_plays_from_now() -> None:
    tracker = PlayoutTracker()
    tracker.queued("item_a", 1000.0, 0.0)
    tracker.clear(100.0)
    tracker.queued("item_b", 200.0, 120.0)
    assert tracker.playing_item(120.0) == "item_b"
    assert tracker.finished_at() == 320.0
    assert tracker.played_ms("item_b", 220.0) == 100.0


def test_zero_length_chunk_registers_the_item_only() -> None:
    tracker = PlayoutTracker()
    tracker.queued("item_a", 0.0, 0.0)
    assert tracker.finished_at() is None
    assert not tracker.speaking(0.0)
    assert tracker.played_ms("item_a", 10.0) == 0.0


def test_forget() -> None:
    tracker = PlayoutTracker()
    tracker.queued("item_a", 100.0, 0.0)
    tracker.forget("item_a")  # still playing: kept
    assert tracker.queued_ms("item_a") == 100.0
    assert tracker.played_ms("item_a", 200.0) == 100.0
    tracker.forget("item_a")
    assert tracker.queued_ms("item_a") == 0.0
    assert tracker.played_ms("item_a", 200.0) == 0.0


def test_time_must_not_go_backwards() -> None:
    tracker = PlayoutTracker()
    tracker.queued("item_a", 100.0, 50.0)
    with pytest.raises(ValueError, match="backwards"):
        tracker.played_ms("item_a", 10.0)


def test_negative_duration_is_rejected() -> None:
    with pytest.raises(ValueError, match="duration_ms"):
        PlayoutTracker().queued("item_a", -1.0, 0.0)
