"""Label values of /metrics under random paths, ids and methods.

Each distinct label value is a new time series, so the labels must come
from a fixed set whatever callers send. That set is the route patterns (or
"-"), the configured hypervisor types (or "-"), the standard methods (or
"other") and the statuses the service returns.
"""

import random
import re

from tests.attacks import round4
from tests.attacks.round4 import backends  # noqa: F401 (fixture)

SEED = 20261205
REQUESTS = 300
METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS",
           "TRACE", "PROPFIND", "X-RANDOM"]
SEGMENT_CHARACTERS = "abcXYZ019-._~!$&'()*+,;=:@%"
LABEL = re.compile(r'(\w+)="([^"]*)"')
GUEST_CHILDREN = ["", "/disks", "/tags", "/power", "/export",
                  "/snapshots/abc", "/network_interfaces/52-54-00-00-00-01"]


def random_segment(generator):
    return "".join(generator.choice(SEGMENT_CHARACTERS)
                   for _ in range(generator.randint(1, 12)))


def random_path(generator, bases):
    """Return a random path: below a backend, a guest's route with a random
    id, or below no known prefix."""
    kind = generator.randrange(3)
    if kind == 1:
        return "%s/guests/%s%s" % (
            generator.choice(bases), random_segment(generator),
            generator.choice(GUEST_CHILDREN))
    prefix = generator.choice(bases) if kind == 0 else ""
    depth = generator.randint(1, 4)
    return prefix + "".join("/" + random_segment(generator)
                            for _ in range(depth))


def label_values(text):
    """Return {label name: set of values} of the request metrics."""
    values = {}
    for line in text.splitlines():
        if not line.startswith("simplestack_request"):
            continue
        for name, value in LABEL.findall(line):
            values.setdefault(name, set()).add(value)
    return values


def test_random_requests_add_no_label_values(backends):  # noqa: F811
    client = backends.client("test")
    generator = random.Random(SEED)
    bases = [backends.base(name) for name in round4.BACKENDS]
    for _ in range(REQUESTS):
        client.session.request(
            generator.choice(METHODS),
            client.base_url + random_path(generator, bases),
            timeout=round4.stack.CLIENT_TIMEOUT)

    values = label_values(client.session.get(
        client.base_url + "/metrics", timeout=30).text)

    patterns = values["endpoint"] - {"-"}
    assert "/{hypervisor}/{host}/guests/{guest_id}" in patterns
    assert all(pattern.startswith(("/{hypervisor}/{host}", "/metrics"))
               for pattern in patterns), patterns
    assert values["hypervisor"] <= {"-", "test", "xen", "vmware"}
    assert values["method"] <= {"GET", "HEAD", "POST", "PUT", "DELETE",
                                "PATCH", "OPTIONS", "other"}
    assert all(re.fullmatch(r"[1-5][0-9][0-9]", status)
               for status in values["status"]), values["status"]
    assert len(values["status"]) <= 12, values["status"]
