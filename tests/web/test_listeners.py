from bns_resolver.config import load_settings
from bns_resolver.web.listeners import web_address_for, web_listen_addresses


def test_default_web_listeners_are_port_80_of_each_dns_address() -> None:
    settings = load_settings(None, env={}, listen=["127.0.0.1:53", "192.168.1.1:53", "127.0.0.1:5353"])
    assert web_listen_addresses(settings) == (("127.0.0.1", 80), ("192.168.1.1", 80))
    assert web_listen_addresses(load_settings(None, env={}, web_listen=["10.0.0.1:8080"])) == (("10.0.0.1", 8080),)


def test_the_address_handed_out_is_where_the_query_arrived_if_a_web_listener_is_there() -> None:
    bound = {"127.0.0.1", "192.168.1.1"}
    assert web_address_for("192.168.1.1", bound, None) == "192.168.1.1"
    assert web_address_for("127.0.0.1", bound, None) == "127.0.0.1"
    assert web_address_for("10.9.9.9", bound, None) is None  # nothing listens there: no address


def test_nothing_bound_means_no_synthesis_even_with_a_configured_address() -> None:
    assert web_address_for("127.0.0.1", set(), "192.0.2.1") is None


def test_wildcards() -> None:
    assert web_address_for("0.0.0.0", {"0.0.0.0"}, None) is None  # arrival address unknown: must be configured
    assert web_address_for("0.0.0.0", {"0.0.0.0"}, "192.168.1.1") == "192.168.1.1"
    assert web_address_for("192.168.1.1", {"0.0.0.0"}, None) == "192.168.1.1"
    assert web_address_for("::1", {"0.0.0.0"}, None) is None
    assert web_address_for("::1", {"::"}, None) == "::1"
