"""A socket's outbox keeps answers in order, and only the latest frame of each board view."""

from gateway.outbox import Outbox
from gateway.wire import Frame

GLOBAL_TOP = ("global", "top")
GLOBAL_AROUND = ("global", "around")
DAILY_TOP = ("daily", "top")


def _frame(name: str, entries: int = 0) -> Frame:
    return Frame({"type": "test", "name": name, "entries": [{}] * entries})


async def _names(outbox: Outbox) -> list[str]:
    return [frame.body["name"] for frame in await outbox.take()]


async def test_queued_frames_come_first_in_order_then_the_latest_board_views():
    outbox = Outbox()

    outbox.put(_frame("result-1"))
    outbox.put_board(GLOBAL_TOP, _frame("global-v1"))
    outbox.put(_frame("result-2"))
    outbox.put_board(GLOBAL_TOP, _frame("global-v2"))
    outbox.put_board(DAILY_TOP, _frame("daily-v1"))

    assert await _names(outbox) == ["result-1", "result-2", "global-v2", "daily-v1"]


async def test_views_of_one_board_do_not_replace_each_other():
    outbox = Outbox()

    outbox.put_board(GLOBAL_TOP, _frame("top-v1"))
    outbox.put_board(GLOBAL_AROUND, _frame("around-v1"))
    outbox.put_board(GLOBAL_TOP, _frame("top-v2"))

    assert await _names(outbox) == ["top-v2", "around-v1"]


async def test_a_kept_frame_is_sent_before_the_frame_that_follows_it():
    outbox = Outbox()

    outbox.put_board(GLOBAL_AROUND, _frame("snapshot"), keep=True)
    outbox.put_board(GLOBAL_AROUND, _frame("update-1"))
    outbox.put_board(GLOBAL_AROUND, _frame("update-2"))

    assert await _names(outbox) == ["snapshot", "update-2"]


async def test_a_kept_frame_that_no_longer_fits_the_queue_is_reported():
    outbox = Outbox(max_frames=1)
    outbox.put(_frame("result"))

    outbox.put_board(GLOBAL_TOP, _frame("snapshot"), keep=True)
    fitted = outbox.put_board(GLOBAL_TOP, _frame("update"))

    assert fitted is False


async def test_a_full_queue_refuses_more_frames():
    outbox = Outbox(max_frames=2)

    accepted = [outbox.put(_frame("a")), outbox.put(_frame("b")), outbox.put(_frame("c"))]

    assert accepted == [True, True, False]
    assert await _names(outbox) == ["a", "b"]


async def test_queued_board_entries_are_bounded_too():
    outbox = Outbox(max_frames=100, max_entries=250)

    accepted = [outbox.put(_frame(f"snapshot-{n}", entries=100)) for n in range(3)]

    assert accepted == [True, True, False]
    assert await _names(outbox) == ["snapshot-0", "snapshot-1"]
    assert outbox.put(_frame("after", entries=200)) is True


async def test_dropping_a_view_forgets_its_pending_frame_even_a_kept_one():
    outbox = Outbox()

    outbox.put_board(GLOBAL_TOP, _frame("old view"), keep=True)
    outbox.put_board(GLOBAL_AROUND, _frame("around view"))
    outbox.drop_board(GLOBAL_TOP)
    outbox.put(_frame("snapshot"))

    assert await _names(outbox) == ["snapshot", "around view"]
