"""A socket's outbox keeps answers in order, and only the latest view of each board."""

from gateway.outbox import Outbox


async def test_queued_frames_come_first_in_order_then_the_latest_board_views():
    outbox = Outbox()

    outbox.put("result-1")
    outbox.put_board("global", "global-v1")
    outbox.put("result-2")
    outbox.put_board("global", "global-v2")
    outbox.put_board("daily", "daily-v1")

    assert await outbox.take() == ["result-1", "result-2", "global-v2", "daily-v1"]


async def test_a_full_queue_refuses_more_frames():
    outbox = Outbox(max_frames=2)

    accepted = [outbox.put("a"), outbox.put("b"), outbox.put("c")]

    assert accepted == [True, True, False]
    assert await outbox.take() == ["a", "b"]


async def test_dropping_a_board_forgets_its_pending_view():
    outbox = Outbox()

    outbox.put_board("global", "old view")
    outbox.drop_board("global")
    outbox.put("snapshot")

    assert await outbox.take() == ["snapshot"]
