"""The /docs page, rendered by headless Chromium from the running service."""

import json
import re
import shutil
import subprocess

import pytest

CHROMIUM = "chromium"
# The flags that run Debian's Chromium as root without a display, and keep
# its own background requests (updates, sync, accounts) from starting. The
# resolver rule fails every host name but loopback, so whatever Chromium
# still tries never leaves the machine.
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
    "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    # Lets the page's scripts run (fetch /openapi.json, render) before the
    # DOM is dumped; virtual time skips idle waits.
    "--virtual-time-budget=20000",
)
GUEST_PATHS = (
    "/{hypervisor}/{host}/guests",
    "/{hypervisor}/{host}/guests/{guest_id}",
    "/{hypervisor}/{host}/guests/{guest_id}/power",
    "/{hypervisor}/{host}/guests/{guest_id}/export",
)


@pytest.fixture(scope="module")
def rendered_docs(server, tmp_path_factory):
    """Return (DOM after the scripts ran, URLs the page requested)."""
    chromium = shutil.which(CHROMIUM)
    assert chromium, ("Debian's chromium package is missing; "
                      "scripts/bootstrap --daemons installs it")
    workdir = tmp_path_factory.mktemp("chromium")
    net_log = workdir / "net-log.json"
    result = subprocess.run(
        [chromium, *CHROMIUM_FLAGS,
         "--user-data-dir=%s" % (workdir / "profile"),
         "--log-net-log=%s" % net_log,
         "--dump-dom", server.url + "/docs"],
        capture_output=True, timeout=90)
    assert result.returncode == 0, result.stderr.decode("utf-8", "replace")
    return result.stdout.decode("utf-8"), page_requests(net_log, server.url)


def page_requests(net_log_path, origin):
    """Return the URLs that the page at ``origin`` made Chromium request.

    The net log also has Chromium's own requests; the page's are those
    whose initiator is the page's origin, plus the page itself.
    """
    with open(net_log_path, encoding="utf-8") as net_log:
        log = json.load(net_log)
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    urls = []
    for event in log["events"]:
        params = event.get("params", {})
        if event["type"] != start_job or "url" not in params:
            continue
        if (params.get("initiator") == origin
                or params.get("request_type") == "main frame"):
            urls.append(params["url"])
    return urls


def test_docs_page_lists_guest_endpoints(rendered_docs):
    dom, _ = rendered_docs
    rendered_paths = set(re.findall(r'data-path="([^"]*)"', dom))
    for path in GUEST_PATHS:
        assert path in rendered_paths, path
    assert "Simplestack" in dom


def test_docs_page_loads_only_local_files(rendered_docs, server):
    _, urls = rendered_docs
    assert server.url + "/docs" in urls
    assert server.url + "/openapi.json" in urls
    assert server.url + "/docs/static/swagger-ui-bundle.js" in urls
    outside = [url for url in urls if not url.startswith(server.url + "/")]
    assert outside == []
