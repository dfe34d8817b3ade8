"""Which address a login counts against, behind zero, one or two trusted proxies."""

import pytest

from gateway.identity import address_of

PEER = "10.0.0.5"


@pytest.mark.parametrize(
    ("forwarded", "hops", "expected"),
    [
        ([], 0, PEER),
        (["203.0.113.9"], 0, PEER),
        (["203.0.113.9"], 1, "203.0.113.9"),
        (["6.6.6.6, 203.0.113.9"], 1, "203.0.113.9"),
        (["6.6.6.6", "203.0.113.9"], 1, "203.0.113.9"),
        (["6.6.6.6, 203.0.113.9, 10.0.0.2"], 2, "203.0.113.9"),
        (["203.0.113.9"], 2, PEER),
        ([""], 1, PEER),
        (["203.0.113.9, "], 1, PEER),
        ([" 2001:db8::7 "], 1, "2001:db8::7"),
    ],
    ids=[
        "no_proxy_no_header",
        "no_proxy_forged_header",
        "one_proxy",
        "one_proxy_forged_prefix",
        "one_proxy_two_headers",
        "two_proxies",
        "fewer_entries_than_proxies",
        "empty_header",
        "empty_last_entry",
        "ipv6_with_spaces",
    ],
)
def test_the_client_is_the_entry_the_nearest_untrusted_hop_reported(forwarded, hops, expected):
    assert address_of(PEER, forwarded, hops) == expected
