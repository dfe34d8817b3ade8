"""A socket's outbox keeps answers in order, and only the latest frame of each board view."""

from gateway.outbox import Outbox

GLOBAL_TOP = ("global", "top")
GLOBAL_AROUND = ("global", "around")
DAILY_TOP = ("daily", "top")


async def test_queued_frames_come_first_in_order_then_the_latest_board_views():
    outbox = Outbox()

    outbox.put("result-1")
    outbox.put_board(GLOBAL_TOP, "global-v1")
    outbox.put("result-2")
    outbox.put_board(GLOBAL_TOP, "global-v2")
    outbox.put_board(DAILY_TOP, "daily-v1")

    assert await outbox.take() == ["result-1", "result-2", "global-v2", "daily-v1"]


async def test_views_of_one_board_do_not_replace_each_other():
    outbox = Outbox()

    outbox.put_board(GLOBAL_TOP, "top-v1")
    outbox.put_board(GLOBAL_AROUND, "around-v1")
    outbox.put_board(GLOBAL_TOP, "top-v2")

    assert await outbox.take() == ["top-v2", "around-v1"]


async def test_a_kept_frame_is_sent_before_the_frame_that_follows_it():
    outbox = Outbox()

    outbox.put_board(GLOBAL_AROUND, "snapshot", keep=True)
    outbox.put_board(GLOBAL_AROUND, "update-1")
    outbox.put_board(GLOBAL_AROUND, "update-2")

    assert await outbox.take() == ["snapshot", "update-2"]


async def test_a_kept_frame_that_no_longer_fits_the_queue_is_reported():
    outbox = Outbox(max_frames=1)
    outbox.put("result")

    outbox.put_board(GLOBAL_TOP, "snapshot", keep=True)
    fitted = outbox.put_board(GLOBAL_TOP, "update")

    assert fitted is False


async def test_a_full_queue_refuses_more_frames():
    outbox = Outbox(max_frames=2)

    accepted = [outbox.put("a"), outbox.put("b"), outbox.put("c")]

    assert accepted == [True, True, False]
    assert await outbox.take() == ["a", "b"]


async def test_dropping_a_view_forgets_its_pending_frame_even_a_kept_one():
    outbox = Outbox()

    outbox.put_board(GLOBAL_TOP, "old view", keep=True)
    outbox.put_board(GLOBAL_AROUND, "around view")
    outbox.drop_board(GLOBAL_TOP)
    outbox.put("snapshot")

    assert await outbox.take() == ["snapshot", "around view"]
