"""dns/querylog.py: what a query-log line says about a question and its answer, read from the bytes."""

from __future__ import annotations

import dns.edns
import dns.message
import dns.rcode

from bns_resolver.dns.querylog import outcome_of, question_of


def test_the_ede_is_found_behind_other_options_and_only_in_the_opt_record() -> None:
    query = dns.message.make_query("alice.id", "URI", use_edns=0)
    reply = dns.message.make_response(query)
    reply.set_rcode(dns.rcode.SERVFAIL)
    reply.use_edns(0, options=[dns.edns.GenericOption(10, b"\x01" * 16),
                               dns.edns.EDEOption(dns.edns.EDECode.NO_REACHABLE_AUTHORITY, "no upstream")])
    assert outcome_of(reply.to_wire()) == ("SERVFAIL", "22")
    plain = dns.message.make_response(query)
    assert outcome_of(plain.to_wire()) == ("NOERROR", "-")  # an OPT without EDE
    assert question_of(query.to_wire()) == ("alice.id.", "URI")
    assert question_of(dns.message.make_query("alice.id", 65280).to_wire()) == ("alice.id.", "TYPE65280")


def test_a_malformed_answer_still_shows_its_rcode() -> None:
    reply = dns.message.make_response(dns.message.make_query("alice.id", "A", use_edns=0))
    reply.set_rcode(dns.rcode.NXDOMAIN)
    wire = reply.to_wire()
    assert outcome_of(wire[:-4]) == ("NXDOMAIN", "-")
    assert outcome_of(wire[:8]) == ("DROPPED", "-")
