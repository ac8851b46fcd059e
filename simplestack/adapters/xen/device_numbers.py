"""Device numbers of new VBDs and VIFs, safe against concurrent requests.

Two requests that add a disk to one guest at once both see the same
lowest free number. XAPI rejects the second VBD.create with
DEVICE_ALREADY_EXISTS, and the adapter then tries the next number. A
host that let both through is caught by reading the devices back: a
request that finds its number taken by another device removes its own
and tries again.
"""

import logging
import random
import time

from simplestack import errors

logger = logging.getLogger(__name__)

#: Attempts before a device creation gives up with a Conflict.
DEVICE_ATTEMPTS = 8

#: Upper bound of the random pause between attempts, in seconds; it
#: keeps two colliding requests from colliding again.
RETRY_PAUSE = 0.05

DUPLICATE_CODES = frozenset(("DEVICE_ALREADY_EXISTS",
                             "VM_DUPLICATE_VBD_DEVICE"))

# Device class -> (VM field that lists the devices, device number field).
DEVICE_FIELDS = {
    "VBD": ("VBDs", "userdevice"),
    "VIF": ("VIFs", "device"),
}


def lowest_free(used_numbers):
    number = 0
    while number in used_numbers:
        number += 1
    return number


class DeviceNumbersMixin:
    """The device creation of XenAdapter, shared by disks, CD drives and
    network interfaces."""

    def _device_numbers(self, cls, vm_ref, exclude=None):
        """Return {device number: [refs]} of the VM's ``cls`` devices."""
        list_field, number_field = DEVICE_FIELDS[cls]
        refs = self._call("VM.get_%s" % list_field, vm_ref, vm=vm_ref)
        numbers = {}
        for ref, record in self._records(cls, refs).items():
            if ref != exclude and record[number_field].isdigit():
                numbers.setdefault(int(record[number_field]), []).append(ref)
        return numbers

    def _create_device(self, cls, vm_ref, build, number=None):
        """Create a ``cls`` device on the VM at the lowest free number
        (or at ``number``, if free) and return (ref, number).

        ``build(number_text)`` returns the record for ``cls.create``.
        """
        for _attempt in range(DEVICE_ATTEMPTS):
            used_numbers = self._device_numbers(cls, vm_ref)
            if number is not None and number not in used_numbers:
                chosen = number
            else:
                chosen = lowest_free(used_numbers)
            try:
                ref = self._call(cls + ".create", build(str(chosen)),
                                 vm=vm_ref)
            except errors.Conflict as error:
                if error.code not in DUPLICATE_CODES:
                    raise
                time.sleep(random.uniform(0, RETRY_PAUSE))
                continue

            if chosen not in self._device_numbers(cls, vm_ref, exclude=ref):
                return ref, chosen
            logger.info("device %d of VM %s was taken by a concurrent "
                        "request; trying another", chosen,
                        self._uuids.get(vm_ref, "?"))
            self._call(cls + ".destroy", ref, vm=vm_ref)
            time.sleep(random.uniform(0, RETRY_PAUSE))
        raise errors.Conflict(
            "no free %s device number for guest %s after %d attempts; other "
            "requests keep adding devices, so retry later"
            % (cls, self._uuids.get(vm_ref, "?"), DEVICE_ATTEMPTS))
