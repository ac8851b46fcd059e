"""Adapters used only by the API tests, built on the real libvirt adapter.

``RecordingAdapter`` records each instance so a test can check that every
connection opened for a request was closed. ``BrokenAdapter`` fails with a
plain Python exception, standing in for a bug of ours.
"""

import threading

from simplestack.adapters.libvirt import LibvirtAdapter


class RecordingAdapter(LibvirtAdapter):
    instances = []
    lock = threading.Lock()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.opened = False
        self.closed = False
        with self.lock:
            self.instances.append(self)

    def open(self):
        self.opened = True
        super().open()

    def close(self):
        self.closed = True
        super().close()


class BrokenAdapter(LibvirtAdapter):
    def list_guests(self):
        raise RuntimeError("secret internal detail /etc/simplestack")
