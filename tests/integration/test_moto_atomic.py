"""The moto server the tests start applies conditional writes to one item one at a time, as DynamoDB does
(plain moto does not: benchmarks/moto_conditional_writes.py shows two racing lease takes both succeeding)."""

from __future__ import annotations

from tests.support.conditional_race import race_takes
from tests.support.moto_server import MotoServer


def test_racing_conditional_takes_of_one_lease_let_exactly_one_through(moto: MotoServer) -> None:
    result = race_takes(moto.url, rounds=120, clients=6)
    assert result.several_won == []
    assert result.none_won == 0
