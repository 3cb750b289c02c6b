"""The address pool the bottles' networks take their subnets from (engine/networks.py)."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bottlegen.engine.networks import DEFAULT_POOL, AddressPool, free_subnets
from bottlegen.errors import ConflictError, UsageError


def ranges(*cidrs: str) -> list[tuple[int, int]]:
    nets = [ipaddress.ip_network(c) for c in cidrs]
    return [(int(n.network_address), int(n.broadcast_address)) for n in nets]


def test_a_pool_is_written_as_dockerd_writes_one():
    pool = AddressPool.parse("base=10.240.0.0/20,size=28", "--address-pool")
    assert str(pool) == "base=10.240.0.0/20,size=28"
    assert str(AddressPool.parse(DEFAULT_POOL, "default")) == "base=10.233.0.0/16,size=28"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("10.0.0.0/16", "give base= and size="),
        ("base=10.0.0.0/16,size=28,extra=1", "give base= and size="),
        ("base=10.0.0.1/16,size=28", "not an IPv4 network"),
        ("base=fd00::/64,size=120", "not an IPv4 network"),
        ("base=10.0.0.0/16,size=30", "from the base's (16) to 28"),
        ("base=10.0.0.0/16,size=8", "from the base's (16) to 28"),
        ("base=10.0.0.0/16,size=x", "from the base's (16) to 28"),
    ],
)
def test_a_malformed_pool_is_a_usage_error_that_shows_the_form(text, says):
    with pytest.raises(UsageError) as caught:
        AddressPool.parse(text, "--address-pool")
    assert says in str(caught.value) and "base=10.233.0.0/16,size=28" in str(caught.value)
    assert str(caught.value).startswith(f"--address-pool {text!r}")


def test_the_first_free_subnets_are_taken_and_none_overlaps_a_network():
    pool = AddressPool.parse("base=10.233.0.0/24,size=28", "p")
    taken = ranges("10.233.0.0/28", "10.233.0.32/27", "172.17.0.0/16", "10.233.0.100/32")
    assert free_subnets(pool, taken, 4) == ["10.233.0.16/28", "10.233.0.64/28", "10.233.0.80/28", "10.233.0.112/28"]
    # a network wider than the pool covers all of it
    with pytest.raises(ConflictError) as caught:
        free_subnets(pool, ranges("10.0.0.0/8"), 1)
    assert "has 0 of its 16 subnets free and 1 are needed; nothing was started" in str(caught.value)
    assert "bottlegen ls" in str(caught.value) and "--address-pool" in str(caught.value)


def test_a_pool_with_fewer_free_subnets_than_needed_says_how_many_it_has():
    pool = AddressPool.parse("base=10.233.0.0/27,size=28", "p")
    with pytest.raises(ConflictError, match="has 1 of its 2 subnets free and 2 are needed"):
        free_subnets(pool, ranges("10.233.0.0/28"), 2)


@given(
    st.lists(st.tuples(st.integers(0, 255), st.integers(20, 32)), max_size=12),
    st.integers(1, 4),
)
def test_free_subnets_are_the_first_that_overlap_nothing(networks, count):
    pool = AddressPool.parse("base=10.233.0.0/24,size=28", "p")
    taken_nets = [ipaddress.ip_network(f"10.233.0.{last}/{prefix}", strict=False) for last, prefix in networks]
    expected = [str(s) for s in pool.base.subnets(new_prefix=28) if not any(s.overlaps(t) for t in taken_nets)][:count]
    taken = [(int(n.network_address), int(n.broadcast_address)) for n in taken_nets]
    if len(expected) < count:
        with pytest.raises(ConflictError):
            free_subnets(pool, taken, count)
    else:
        assert free_subnets(pool, taken, count) == expected
