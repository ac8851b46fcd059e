"""Request ids that the service makes when a request has none."""

import os
import uuid

from simplestack import tweens


def test_generated_ids_are_random_uuids():
    ids = [tweens.random_request_id()
           for _ in range(3 * tweens.RANDOM_IDS_PER_READ)]

    assert len(set(ids)) == len(ids)
    for request_id in ids:
        parsed = uuid.UUID(request_id)
        assert parsed.hex == request_id
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122


def test_forked_child_makes_other_ids():
    tweens.random_request_id()  # leaves ids made ahead in the parent
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.write(writer, tweens.random_request_id().encode("ascii"))
        finally:
            os._exit(0)
    os.close(writer)
    with os.fdopen(reader, "rb") as pipe:
        child_id = pipe.read().decode("ascii")
    os.waitpid(pid, 0)

    parent_ids = {tweens.random_request_id()
                  for _ in range(tweens.RANDOM_IDS_PER_READ)}
    assert len(child_id) == 32
    assert child_id not in parent_ids


def test_response_carries_generated_id(api):
    response = api.get("/healthz")

    request_id = response.headers["X-Request-ID"]
    assert uuid.UUID(request_id).version == 4
    assert api.get("/healthz").headers["X-Request-ID"] != request_id
