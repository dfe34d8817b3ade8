"""The per-player action rate: a token bucket on a clock the test turns."""

from gateway.rates import ActionRates


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_is_granted_then_the_wait_for_the_next_token_is_told():
    clock = Clock()
    rates = ActionRates(rate=10, burst=3, clock=clock)

    assert [rates.take("ada") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert rates.take("ada") == 0.1
    clock.now += 0.05
    assert abs(rates.take("ada") - 0.05) < 1e-9
    clock.now += 0.06
    assert rates.take("ada") == 0.0


def test_players_have_buckets_of_their_own():
    rates = ActionRates(rate=1, burst=1, clock=Clock())

    assert rates.take("ada") == 0.0
    assert rates.take("bob") == 0.0
    assert rates.take("ada") > 0


def test_a_refused_action_costs_nothing():
    clock = Clock()
    rates = ActionRates(rate=1, burst=1, clock=clock)
    rates.take("ada")

    waits = [rates.take("ada") for _ in range(100)]
    assert waits == [1.0] * 100
    clock.now += 1.0
    assert rates.take("ada") == 0.0


def test_full_buckets_are_forgotten():
    clock = Clock()
    rates = ActionRates(rate=10, burst=5, clock=clock)
    for n in range(1000):
        rates.take(f"p{n}")
    assert len(rates) == 1000

    clock.now += 60
    rates.take("ada")
    assert len(rates) == 1


def test_an_action_that_could_not_be_queued_gives_its_token_back():
    clock = Clock()
    rates = ActionRates(rate=1, burst=2, clock=clock)
    rates.take("ada")
    rates.take("ada")

    rates.give_back("ada")
    assert rates.take("ada") == 0.0
    assert rates.take("ada") > 0

    rates.give_back("bob")
    assert [rates.take("bob") for _ in range(3)][:2] == [0.0, 0.0]
