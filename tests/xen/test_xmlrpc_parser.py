"""The Xen adapter's XML-RPC response parser returns what xmlrpc.client
returns, and raises what it raises."""

import contextlib
import copy
import xmlrpc.client

import pytest
import XenAPI

from simplestack.adapters.xen import xmlrpc_parser
from simplestack.adapters.xen.constants import GUEST_VM_QUERY
from tests.xen_fixtures import CATransport

LIST_CLASSES = ["VM", "VBD", "VDI", "VM_guest_metrics", "host"]
EVENT_FIELDS = {"vm": frozenset(("uuid", "name_label", "other_config")),
                "vdi": frozenset(("uuid",))}
RECORD_FIELDS = frozenset(("uuid", "name_label", "other_config"))


def event_batch(*events):
    """Return a response of XAPI's event.from form with ``events``, each
    the XML of one ``<value>``."""
    return response(
        "<value><struct><member><name>Status</name><value>Success</value>"
        "</member><member><name>Value</name><value><struct><member><name>"
        "events</name><value><array><data>%s</data></array></value></member>"
        "<member><name>token</name><value>7</value></member></struct>"
        "</value></member></struct></value>" % "".join(events))


def event(members):
    return "<value><struct>%s</struct></value>" % "".join(
        "<member><name>%s</name>%s</member>" % item for item in members)


SNAPSHOT = ("<value><struct><member><name>uuid</name><value>u</value>"
            "</member><member><name>power_state</name><value>Halted</value>"
            "</member><member><name>other_config</name><value><struct>"
            "</struct></value></member></struct></value>")


def standard(body):
    parser, unmarshaller = xmlrpc.client.getparser()
    parser.feed(body)
    parser.close()
    return unmarshaller.close()


def outcome(parse, body):
    """Return ("value", result) or ("error", exception type, text)."""
    try:
        return ("value", parse(body))
    except Exception as error:  # the comparison covers every error type
        return ("error", type(error), str(error))


def response(value_xml):
    return ("<?xml version='1.0'?>\n<methodResponse><params><param>%s"
            "</param></params></methodResponse>\n" % value_xml).encode()


def restricted(params, event_fields):
    """Return ``params`` of an event.from response with the snapshots of
    the classes in ``event_fields`` cut to the fields named there."""
    value = copy.deepcopy(params)
    events = value[0].get("Value", {}).get("events", []) \
        if isinstance(value[0], dict) and \
        isinstance(value[0].get("Value"), dict) else []
    for event in events if isinstance(events, list) else []:
        cls = event.get("class") if isinstance(event, dict) else None
        names = event_fields.get(cls.lower()) if isinstance(cls, str) \
            else None
        snapshot = event.get("snapshot") if names is not None else None
        if isinstance(snapshot, dict):
            event["snapshot"] = {key: item for key, item in snapshot.items()
                                 if key in names}
    return value


def restricted_records(params, names):
    """Return ``params`` of a ``{Status, Value: {ref: record}}`` response
    with each record cut to ``names``."""
    value = copy.deepcopy(params)
    records = value[0].get("Value") if isinstance(value[0], dict) else None
    if isinstance(records, dict):
        for ref, record in records.items():
            if isinstance(record, dict):
                records[ref] = {key: item for key, item in record.items()
                                if key in names}
    return value


def records_response(*members):
    """Return a ``{Status, Value: {...}}`` response whose Value struct has
    ``members``, each (name, XML of one ``<value>``)."""
    return response(
        "<value><struct><member><name>Status</name><value>Success</value>"
        "</member><member><name>Value</name><value><struct>%s</struct>"
        "</value></member></struct></value>" % "".join(
            "<member><name>%s</name>%s</member>" % item for item in members))


def assert_parsed_and_cut(body, cut, **fields):
    """Assert that loads_response with ``fields`` returns what the standard
    parser returns, passed through ``cut``, or raises what it raises."""
    expected = outcome(standard, body)
    if expected[0] == "value":
        expected = ("value", cut(expected[1]))
    assert outcome(lambda text: xmlrpc_parser.loads_response(
        text, **fields), body) == expected


class RawTransport(CATransport):
    """Keep each response body, parsed the standard way."""

    bodies = []

    def parse_response(self, response):
        body = response.read()
        self.bodies.append(body)
        return standard(body)


@contextlib.contextmanager
def raw_session(simulator):
    """Yield (``session.xenapi``, its RawTransport) of a new session on
    ``simulator``, logged out afterwards."""
    transport = RawTransport(simulator.ca_bundle)
    session = XenAPI.Session(simulator.url, transport=transport)
    session.xenapi.login_with_password(simulator.username,
                                       simulator.password, "1.0",
                                       "parser-tests")
    try:
        yield session.xenapi, transport
    finally:
        session.xenapi.session.logout()


def test_event_from_batch_matches(xapi_simulator):
    with raw_session(xapi_simulator) as (xenapi, transport):
        for classes in (LIST_CLASSES, ["*"]):
            getattr(xenapi.event, "from")(classes, "", 0.0)
            body = transport.bodies[-1]
            expected = standard(body)

            assert xmlrpc_parser.loads_response(body) == expected
            # The usual shape takes the fast path, not the fallback.
            assert xmlrpc_parser._fast_loads(body) == expected

            cut = restricted(expected, EVENT_FIELDS)
            assert xmlrpc_parser.loads_response(body, EVENT_FIELDS) == cut
            assert xmlrpc_parser._fast_loads(body, EVENT_FIELDS) == cut
            events = cut[0]["Value"]["events"]
            vm_snapshots = [event["snapshot"] for event in events
                            if event["class"] == "vm"]
            assert vm_snapshots
            for snapshot in vm_snapshots:
                assert set(snapshot) == EVENT_FIELDS["vm"]
            # VBD is not named, so its snapshots stay whole.
            assert [event for event in events if event["class"] == "vbd"
                    and len(event["snapshot"]) > 10]


def test_records_where_response_matches(xapi_simulator):
    with raw_session(xapi_simulator) as (xenapi, transport):
        xenapi.VM.get_all_records_where(GUEST_VM_QUERY)
        body = transport.bodies[-1]
    expected = standard(body)

    assert xmlrpc_parser.loads_response(body) == expected
    cut = restricted_records(expected, RECORD_FIELDS)
    assert xmlrpc_parser.loads_response(
        body, record_fields=RECORD_FIELDS) == cut
    # The usual shape takes the fast path, not the fallback.
    assert xmlrpc_parser._fast_loads(
        body, record_fields=RECORD_FIELDS) == cut
    records = cut[0]["Value"]
    assert records
    for record in records.values():
        assert set(record) == RECORD_FIELDS


@pytest.mark.parametrize("body", [
    response("<value>plain &amp; &lt;escaped&gt;</value>"),
    response("<value></value>"),
    response("<value><string></string></value>"),
    response("<value>\n  <struct>\n    <member>\n      <name>a</name>\n"
             "      <value><i4>1</i4></value>\n    </member>\n  </struct>\n"
             "</value>"),
    response("<value>text before<string>kept</string>text after</value>"),
    response("<value><struct><member><value>v</value><name>n</name>"
             "</member></struct></value>"),
    response("<value><struct><member><name>a<b/>c</name><value>v</value>"
             "</member></struct></value>"),
    response("<value><struct><member><name>k</name><value>1</value></member>"
             "<member><name>k</name><value>2</value></member></struct></value>"),
    response("<value><array><data></data></array></value>"),
    response("<value><array><value>no data element</value></array></value>"),
    response("<value><array><data><value><boolean>1</boolean></value>"
             "<value><boolean>0</boolean></value><value><nil/></value>"
             "<value><double>-1.5</double></value><value><int> 7 </int></value>"
             "<value><i8>9223372036854775807</i8></value>"
             "<value><biginteger>12</biginteger></value>"
             "</data></array></value>"),
    response("<value><boolean>2</boolean></value>"),
    response("<value><int>seven</int></value>"),
    response("<value><bigdecimal>1.25</bigdecimal></value>"),
    response("<value><base64>aGVsbG8=</base64></value>"),
    response("<value><dateTime.iso8601>20210628T11:25:34Z</dateTime.iso8601>"
             "</value>"),
    response("<value><unknown>x</unknown></value>"),
    response("<value><string>a</string><string>b</string></value>"),
    response("<value><value>nested</value></value>"),
    response("<value><![CDATA[<raw> & text]]></value>"),
    response("<value>a<!-- comment -->b</value>"),
    response("<value><ex:nil xmlns:ex='http://ws.apache.org/xmlrpc/"
             "namespaces/extensions'/></value>"),
    b"<?xml version='1.0'?><methodResponse><params><param><value>a</value>"
    b"</param><param><value>b</value></param></params></methodResponse>",
    b"<?xml version='1.0'?><methodResponse><fault><value><struct>"
    b"<member><name>faultCode</name><value><int>1</int></value></member>"
    b"<member><name>faultString</name><value>failed</value></member>"
    b"</struct></value></fault></methodResponse>",
    b"<?xml version='1.0' encoding='ISO-8859-1'?><methodResponse><params>"
    b"<param><value>caf\xe9</value></param></params></methodResponse>",
    b"<methodResponse><params></params></methodResponse>",
    response("<value><array><data>%s</data></array></value>"
             % ("<value><i4>1</i4></value>" * 60000)),
    b"<methodResponse><params><param><value>unclosed</param></params>",
    b"",
])
def test_odd_document_matches(body):
    assert outcome(xmlrpc_parser.loads_response, body) == \
        outcome(standard, body)
    # Without XAPI's event.from form, event_fields changes nothing.
    assert outcome(lambda text: xmlrpc_parser.loads_response(
        text, EVENT_FIELDS), body) == outcome(standard, body)
    # Without a Value map, record_fields changes nothing.
    assert outcome(lambda text: xmlrpc_parser.loads_response(
        text, record_fields=RECORD_FIELDS), body) == outcome(standard, body)


@pytest.mark.parametrize("body", [
    # The snapshot comes before the class.
    event_batch(event([("snapshot", SNAPSHOT), ("class", "<value>VM</value>"),
                       ("ref", "<value>OpaqueRef:1</value>")])),
    event_batch(event([("class", "<value>vm</value>"), ("snapshot", SNAPSHOT)]),
                event([("class", "<value>vbd</value>"), ("snapshot", SNAPSHOT)])),
    event_batch(event([("class", "<value>vm</value>"),
                       ("operation", "<value>del</value>")])),
    event_batch(event([("class", "<value><i4>3</i4></value>"),
                       ("snapshot", SNAPSHOT)])),
    event_batch(event([("snapshot", SNAPSHOT)])),
    event_batch(event([("class", "<value>vm</value>"),
                       ("snapshot", "<value>text</value>")])),
    event_batch("<value>not a struct</value>"),
    event_batch(event([("class", "<value>vm</value>"), ("snapshot", SNAPSHOT),
                       ("snapshot", SNAPSHOT.replace(">u<", ">second<"))])),
    # A bad number in a kept field fails as before.
    event_batch(event([("class", "<value>vm</value>"), ("snapshot", SNAPSHOT
                       .replace("<value>u</value>", "<value><int>x</int>"
                                "</value>"))])),
    event_batch(event([("class", "<value>vm</value>"), ("snapshot", SNAPSHOT
                       .replace("<name>power_state</name>", "<name>a</name>"
                                "<name>b</name>"))])),
    response("<value><struct><member><name>Value</name><value><struct><member>"
             "<name>events</name><value>none</value></member></struct></value>"
             "</member></struct></value>"),
])
def test_event_fields_cut_only_snapshots(body):
    assert_parsed_and_cut(
        body, lambda params: restricted(params, EVENT_FIELDS),
        event_fields=EVENT_FIELDS)


@pytest.mark.parametrize("body", [
    records_response(("OpaqueRef:1", SNAPSHOT), ("OpaqueRef:2", SNAPSHOT)),
    records_response(),
    # A record that is not a struct stays as it is.
    records_response(("OpaqueRef:1", "<value>text</value>")),
    records_response(("OpaqueRef:1", "<value><array><data></data></array>"
                      "</value>")),
    # A bad number in a kept field fails as before.
    records_response(("OpaqueRef:1", SNAPSHOT.replace(
        "<value>u</value>", "<value><int>x</int></value>"))),
    records_response(("OpaqueRef:1", SNAPSHOT.replace(
        "<name>power_state</name>", "<name>a</name><name>b</name>"))),
    response("<value><struct><member><name>Status</name><value>Failure"
             "</value></member><member><name>ErrorDescription</name><value>"
             "<array><data><value>INTERNAL_ERROR</value></data></array>"
             "</value></member></struct></value>"),
    response("<value><struct><member><name>Value</name><value>text</value>"
             "</member></struct></value>"),
])
def test_record_fields_cut_only_records(body):
    assert_parsed_and_cut(
        body, lambda params: restricted_records(params, RECORD_FIELDS),
        record_fields=RECORD_FIELDS)
