"""The XAPI simulator's cheaper paths keep XAPI's behaviour: the XML-RPC
marshaller's output, event.from's buffer of the last MAX_EVENTS events and
the progress of an XVA import task."""

import datetime
import http.client
import os
import re
import time
import xmlrpc.client

import pytest

from tests.simulators.xapi import model, schema, wire
from tests.simulators.xapi import query as query_module
from tests.simulators.xapi.server import serve
from tests.simulators.xapi.simulator import Simulator

MIB = 1024 ** 2


class Label(str):
    """A str subclass, which takes the marshaller's slower path."""


@pytest.mark.parametrize("value, expected", [
    ("plain", "<value>plain</value>"),
    ("a<b&c>d", "<value>a&lt;b&amp;c&gt;d</value>"),
    (Label("x&y"), "<value>x&amp;y</value>"),
    ("", "<value></value>"),
    (True, "<value><boolean>1</boolean></value>"),
    (0, "<value>0</value>"),
    (2 ** 63 - 1, "<value>9223372036854775807</value>"),
    (wire.Int32(7), "<value><i4>7</i4></value>"),
    (1.5, "<value><double>1.5</double></value>"),
    (None, "<value></value>"),
    (datetime.datetime(2021, 6, 28, 11, 25, 34),
     "<value><dateTime.iso8601>20210628T11:25:34Z</dateTime.iso8601></value>"),
    (["a", 1, [Label("<")]],
     "<value><array><data><value>a</value><value>1</value><value><array><data>"
     "<value>&lt;</value></data></array></value></data></array></value>"),
    (("t", None), "<value><array><data><value>t</value><value></value>"
                  "</data></array></value>"),
    ({"k&": "v", 5: {"n": False}, "s": Label(">")},
     "<value><struct><member><name>k&amp;</name><value>v</value></member>"
     "<member><name>5</name><value><struct><member><name>n</name><value>"
     "<boolean>0</boolean></value></member></struct></value></member>"
     "<member><name>s</name><value>&gt;</value></member></struct></value>"),
])
def test_marshal_value_forms(value, expected):
    assert wire.value_fragment(value) == expected


def test_marshal_rejects_unknown_type():
    with pytest.raises(TypeError):
        wire.value_fragment(object())


@pytest.fixture
def simulator():
    simulator = Simulator(vms=3)
    try:
        yield simulator
    finally:
        simulator.close()


def call(simulator, method, *params):
    return simulator.call(method, list(params), simulator.master_address)


def test_event_buffer_keeps_last_events(simulator, monkeypatch):
    monkeypatch.setattr(model, "MAX_EVENTS", 10)
    monkeypatch.setattr(model, "EVENT_TRIM_BATCH", 5)
    session = call(simulator, "session.login_with_password", "root", "simulator")
    pool = call(simulator, "pool.get_all", session)[0]
    token = call(simulator, "event.from", session, ["pool"], "", 0.0)["token"]

    for _ in range(10):
        call(simulator, "event.inject", session, "pool", pool)
    changes = call(simulator, "event.from", session, ["pool"], token, 0.0)
    assert [event["ref"] for event in changes["events"]] == [pool]
    assert changes["events"][0]["operation"] == "mod"

    call(simulator, "event.inject", session, "pool", pool)
    with pytest.raises(Exception) as raised:
        call(simulator, "event.from", session, ["pool"], token, 0.0)
    assert raised.value.description == ["EVENTS_LOST"]

    for _ in range(20):
        call(simulator, "event.inject", session, "pool", pool)
    assert len(simulator.db.events) <= 15
    oldest_kept = int(simulator.db.event_counter) - 10
    changes = call(simulator, "event.from", session, ["pool"],
                   "%020d" % oldest_kept, 0.0)
    assert [event["ref"] for event in changes["events"]] == [pool]
    with pytest.raises(Exception) as raised:
        call(simulator, "event.from", session, ["pool"],
             "%020d" % (oldest_kept - 1), 0.0)
    assert raised.value.description == ["EVENTS_LOST"]



def snapshot_texts(simulator, session):
    """Return {ref: the snapshot text of the record} from one event.from
    over XML-RPC, each text as the response carries it."""
    body = xmlrpc.client.dumps((session, ["VM", "VBD"], "", 0.0),
                               "event.from").encode()
    response = simulator.handle_xmlrpc(body, simulator.master_address).decode()
    texts = {}
    for event in response.split("<member><name>id</name>")[1:]:
        ref = re.search(r"<name>ref</name><value>([^<]*)</value>", event).group(1)
        opening = "<member><name>snapshot</name>"
        start = event.index(opening) + len(opening)
        texts[ref] = event[start:event.index("</member></struct></value>"
                                             "</member></struct></value>", start)
                           + len("</member></struct></value>")]
    return texts


def marshal_now(simulator, cls, ref):
    return wire.value_fragment(simulator.db.record(cls, ref))


def test_event_snapshots_match_records(simulator):
    session = call(simulator, "session.login_with_password", "root", "simulator")
    for _ in range(2):  # the second call reuses the texts
        texts = snapshot_texts(simulator, session)
        assert len(texts) == len(simulator.db.all("VM")) + len(simulator.db.all("VBD"))
        for ref, text in texts.items():
            cls = "VM" if simulator.db.exists("VM", ref) else "VBD"
            assert text == marshal_now(simulator, cls, ref)


def test_event_snapshots_follow_in_place_changes(simulator):
    session = call(simulator, "session.login_with_password", "root", "simulator")
    vm = next(ref for ref in simulator.db.all("VM")
              if not simulator.db.get("VM", ref)["is_control_domain"])
    stored = simulator.db.get("VM", vm)
    snapshot_texts(simulator, session)

    # Each change below is made without an event, as some handlers do,
    # and each keeps the record equal under == or changes only a type.
    changes = [
        lambda: stored["other_config"].update(cached="no"),
        lambda: stored.update(is_a_template=0),
        lambda: stored.update(is_a_template=0.0),
        lambda: stored.update(is_a_template=False),
        lambda: stored.update(other_config=dict(
            reversed(list(stored["other_config"].items())))),
        lambda: stored.update(VCPUs_max=wire.Int32(stored["VCPUs_max"])),
    ]
    previous = snapshot_texts(simulator, session)[vm]
    for change in changes:
        change()
        text = snapshot_texts(simulator, session)[vm]
        assert text == marshal_now(simulator, "VM", vm)
        assert text != previous
        previous = text


def test_event_snapshots_follow_computed_fields(simulator):
    session = call(simulator, "session.login_with_password", "root", "simulator")
    vbd = next(ref for ref in simulator.db.all("VBD")
               if not simulator.db.get("VBD", ref)["currently_attached"])
    vm = simulator.db.get("VBD", vbd)["VM"]
    before = snapshot_texts(simulator, session)[vm]
    assert vbd in before
    call(simulator, "VBD.destroy", session, vbd)
    after = snapshot_texts(simulator, session)[vm]
    assert vbd not in after
    assert after == marshal_now(simulator, "VM", vm)


#: The guest list's query: the VMs that can be guests.
GUEST_QUERY = ('field "is_a_template" = "false" and field "is_a_snapshot" = '
               '"false" and field "is_control_domain" = "false"')


def records_where_response(simulator, session, cls, query):
    """Return the XML-RPC response to ``cls``.get_all_records_where."""
    body = xmlrpc.client.dumps((session, query),
                               cls + ".get_all_records_where").encode()
    return simulator.handle_xmlrpc(body, simulator.master_address)


def records_where_now(simulator, cls, query):
    """Return the response that marshalling the matching records as they
    are now gives, without the cache of marshalled records."""
    node = query_module.parse(query)
    columns = {query_module.column_name(name): name
               for name in schema.CLASSES[cls]}
    refs = [ref for ref in simulator.db.all(cls)
            if query_module.matches(node, simulator.db.record(cls, ref),
                                    columns)]
    return wire.success({ref: simulator.db.record(cls, ref) for ref in refs})


@pytest.mark.parametrize("cls, query", [
    ("VM", GUEST_QUERY),
    ("VM", 'field "power_state" = "Halted"'),
    ("VBD", "true"),
])
def test_records_where_match_records(simulator, cls, query):
    session = call(simulator, "session.login_with_password", "root",
                   "simulator")
    for _ in range(2):  # the second call reuses the texts
        response = records_where_response(simulator, session, cls, query)
        assert response == records_where_now(simulator, cls, query)


def test_records_where_follow_changes(simulator):
    session = call(simulator, "session.login_with_password", "root",
                   "simulator")
    guests = [ref for ref in simulator.db.all("VM")
              if not simulator.db.get("VM", ref)["is_control_domain"]
              and not simulator.db.get("VM", ref)["is_a_template"]]
    before = records_where_response(simulator, session, "VM", GUEST_QUERY)

    # One guest changes through a call, another in place without an
    # event, a third one is not touched.
    call(simulator, "VM.set_name_label", session, guests[0], "sstest-<&>")
    simulator.db.get("VM", guests[1])["other_config"]["cached"] = "no"
    after = records_where_response(simulator, session, "VM", GUEST_QUERY)

    assert after == records_where_now(simulator, "VM", GUEST_QUERY)
    assert after != before
    assert b"sstest-&lt;&amp;&gt;" in after
    assert b"<name>cached</name><value>no</value>" in after
    untouched = wire.value_fragment(simulator.db.record("VM", guests[2]))
    assert untouched.encode() in before
    assert untouched.encode() in after


def transfer(port, method, path, body=None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {} if body is None else {"Content-Length": str(len(body))}
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_import_progress_changes_per_percent(simulator):
    servers = serve(simulator, ["127.0.0.1", "127.0.0.2"], 0)
    port = servers[0].server_address[1]
    try:
        session = call(simulator, "session.login_with_password", "root", "simulator")
        sr = call(simulator, "pool.get_default_SR", session,
                  call(simulator, "pool.get_all", session)[0])
        vdi = call(simulator, "VDI.create", session, {
            "name_label": "costs", "SR": sr, "virtual_size": str(4 * MIB),
            "type": "user", "sharable": False, "read_only": False,
            "other_config": {}})
        status, _ = transfer(port, "PUT", "/import_raw_vdi?session_id=%s&vdi=%s"
                             % (session, vdi), os.urandom(4 * MIB))
        assert status == 200
        vm = next(ref for ref, record in call(
            simulator, "VM.get_all_records", session).items()
            if not record["is_a_template"] and not record["is_control_domain"]
            and record["power_state"] == "Halted")
        call(simulator, "VBD.create", session, {
            "VM": vm, "VDI": vdi, "userdevice": "5", "bootable": False,
            "mode": "RW", "type": "Disk", "unpluggable": True, "empty": False,
            "other_config": {}, "qos_algorithm_type": "",
            "qos_algorithm_params": {}})
        status, image = transfer(port, "GET", "/export?session_id=%s&ref=%s"
                                 % (session, vm))
        assert status == 200

        task = call(simulator, "task.create", session, "import", "")
        status, _ = transfer(port, "PUT", "/import?session_id=%s&task_id=%s"
                             % (session, task), image)
        assert status == 200
        # The handler responds before it has read the body.
        deadline = time.monotonic() + 30
        while call(simulator, "task.get_status", session, task) == "pending" \
                and time.monotonic() < deadline:
            time.sleep(0.02)
        assert call(simulator, "task.get_status", session, task) == "success"
        assert call(simulator, "task.get_progress", session, task) == 1.0
        task_changes = [event for event in simulator.db.events
                        if event[1] == "task" and event[2] == task]
        # The task changes once per percent of progress at most. A change
        # per 10 KiB read (tarfile's default step) would make about 400.
        assert len(task_changes) < 20
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
