"""Guest ids and names: a name may look like another guest's id.

The libvirt adapter looks a guest up by UUID and, when no guest has that
UUID, by name. A guest named with a UUID string is therefore returned, and
deleted, for a UUID that is not its own.
"""

from tests.api.conftest import unique_name
from tests.attacks.conftest import GUESTS, assert_error


def test_retried_delete_keeps_other_guest(api):
    first = api.post_json(GUESTS, {"name": unique_name()}).json
    first_path = "%s/%s" % (GUESTS, first["id"])
    api.delete(first_path)

    # A second guest whose name is the first guest's (now unused) UUID.
    response = api.post_json(GUESTS, {"name": first["id"]}, status="*")
    if response.status_int != 201:
        # Rejecting UUID-shaped names also closes the hole.
        assert_error(response, 400, "InvalidArguments")
        return
    second = response.json
    second_path = "%s/%s" % (GUESTS, second["id"])
    try:
        # A client retries the DELETE of the first guest, e.g. after a
        # timeout. README: deleting a guest that does not exist is 404.
        retry = api.delete(first_path, status="*")

        assert_error(retry, 404, "EntityNotFound")
        assert api.get(second_path, status="*").status_int == 200
    finally:
        api.delete(second_path, status="*")
