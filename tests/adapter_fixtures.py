"""Fixture bodies shared by tests/xen and tests/vmware.

Both folders run one adapter class against a simulator. Each conftest.py
keeps its backend's specifics (the adapter class, the simulator fixture,
the kit) and passes them in. Its fixtures run the generators here with
``yield from``.
"""

import contextlib

from simplestack import errors
from simplestack.adapters.base import Credentials
from tests import backends


def make_adapter(adapter_class, type_name, simulator, host=None,
                 password=None, **settings):
    """Return an unopened ``adapter_class`` instance for ``simulator``.

    ``settings`` are the type's settings, as the INI file gives them.
    ``ca_bundle`` defaults to the simulator's CA, ``host`` to the
    simulator's address and ``password`` to the simulator's password.
    """
    settings.setdefault("ca_bundle", simulator.ca_bundle)
    config = adapter_class.parse_settings(type_name, {
        key: str(value) for key, value in settings.items()})
    credentials = Credentials(
        simulator.username,
        simulator.password if password is None else password)
    return adapter_class(type_name, host or simulator.netloc, credentials,
                         config)


def opened_adapter(adapter):
    """Open ``adapter``, yield it to the test and close it afterwards."""
    adapter.open()
    yield adapter
    adapter.close()


def guest_maker(adapter, make_remover):
    """Yield a function that creates guests, and delete them afterwards.

    The function creates a stopped guest through ``adapter`` from the keys
    of ``create_guest``'s spec and returns its record. ``name`` defaults to
    a fresh sstest- name, ``memory`` to 64 MiB and ``hdd`` to 1 GiB, and
    ``hdd=None`` means no disk. After the test, an unopened adapter from
    ``make_remover()`` deletes the guests that still exist.
    """
    created = []

    def create(**spec):
        spec.setdefault("name", backends.unique_name("guest"))
        spec.setdefault("memory", 64)
        spec.setdefault("hdd", 1)
        if spec["hdd"] is None:
            del spec["hdd"]
        record = adapter.create_guest(spec)
        created.append(record["id"])
        return record

    yield create
    delete_guests(make_remover(), created)


def delete_guests(remover, guest_ids):
    """Open ``remover``, delete the guests of ``guest_ids`` that still
    exist, and close it."""
    remover.open()
    try:
        for guest_id in guest_ids:
            with contextlib.suppress(errors.EntityNotFound):
                remover.delete_guest(guest_id)
    finally:
        remover.close()
