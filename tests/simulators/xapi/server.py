"""The HTTP(S) servers of the simulated pool.

One process serves two loopback addresses on the same port: the pool master
(for example 127.0.0.1) and a member (127.0.0.2). A client that logs in on
the member gets ``HOST_IS_SLAVE`` with the master's address and can reach
the master on that address with the port it already uses.

Paths on both addresses:
    POST / and /RPC2                 XML-RPC
    PUT /import, /import_raw_vdi     image uploads (see transfers.py)
    GET /export, /export_raw_vdi     image downloads
    GET, DELETE /simulator/stats     call and session counts; reset
    GET, POST, DELETE /simulator/faults   fault rules (JSON)
    GET, PUT /simulator/latency      {"seconds": float} added to every call
"""

import json
import logging
import socket
import ssl
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from . import transfers

log = logging.getLogger(__name__)

# Largest XML-RPC request body accepted, in bytes.
MAX_CALL_BODY = 64 * 1024 * 1024
TLS_HANDSHAKE_TIMEOUT = 30


class XapiServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default listen backlog is 5: past five connections
    # arriving at once, Linux drops the rest until the client resends its
    # SYN about a second later, which concurrency benchmarks would measure.
    request_queue_size = 128

    def __init__(self, address, simulator, ssl_context=None):
        self.simulator = simulator
        self.ssl_context = ssl_context
        self.host_address = address[0]
        super().__init__(address, XapiRequestHandler)

    def get_request(self):
        request, client_address = super().get_request()
        # Responses go out as headers then body; without TCP_NODELAY the
        # client's delayed ACK adds about 40 ms to every call.
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return request, client_address

    def finish_request(self, request, client_address):
        # The TLS handshake runs here, on the connection's own thread, so a
        # slow client cannot stall the accept loop.
        if self.ssl_context is not None:
            try:
                request.settimeout(TLS_HANDSHAKE_TIMEOUT)
                request = self.ssl_context.wrap_socket(request, server_side=True)
                request.settimeout(None)
            except (ssl.SSLError, OSError) as error:
                log.info("TLS handshake with %s failed: %s", client_address, error)
                request.close()
                return
        super().finish_request(request, client_address)

    def handle_error(self, request, client_address):
        log.exception("error while serving %s", client_address)


class XapiRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def version_string(self):
        return "xapi/24.19"

    def log_message(self, format, *args):
        log.debug("%s %s", self.address_string(), format % args)

    @property
    def simulator(self):
        return self.server.simulator

    def split_path(self):
        parsed = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(parsed.query, keep_blank_values=True))
        return parsed.path, query

    # Responses

    def send_bytes(self, status, body, content_type="text/plain; charset=utf-8"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def send_json(self, status, document):
        self.send_bytes(status, (json.dumps(document, indent=1) + "\n").encode(),
                        "application/json")

    def read_body(self, limit):
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            return None
        if int(length) > limit:
            raise ValueError("body of %s bytes is over the limit of %d" % (length, limit))
        return self.rfile.read(int(length))

    # Methods

    def do_POST(self):
        path, _ = self.split_path()
        if path in ("/", "/RPC2"):
            return self.xmlrpc()
        if path == "/simulator/faults":
            return self.add_fault()
        self.send_bytes(404, b"not found\n")

    def do_GET(self):
        path, query = self.split_path()
        if path == "/simulator/stats":
            return self.send_json(200, self.simulator.stats_document())
        if path == "/simulator/faults":
            return self.send_json(200, self.simulator.faults.listing())
        if path == "/simulator/latency":
            return self.send_json(200, {"seconds": self.simulator.latency})
        if path in ("/export", "/export_raw_vdi"):
            return transfers.handle(self, path, query)
        self.send_bytes(404, b"not found\n")

    def do_PUT(self):
        path, query = self.split_path()
        if path in ("/import", "/import_raw_vdi"):
            return transfers.handle(self, path, query)
        if path == "/simulator/latency":
            return self.set_latency()
        self.send_bytes(404, b"not found\n")

    def do_DELETE(self):
        path, _ = self.split_path()
        if path == "/simulator/stats":
            self.simulator.stats.reset()
            return self.send_json(200, self.simulator.stats_document())
        if path == "/simulator/faults":
            self.simulator.faults.clear()
            return self.send_json(200, [])
        self.send_bytes(404, b"not found\n")

    # XML-RPC

    def xmlrpc(self):
        try:
            body = self.read_body(MAX_CALL_BODY)
            if body is None:
                raise ValueError("a Content-Length header is required")
            response = self.simulator.handle_xmlrpc(body, self.server.host_address)
        except ValueError as error:
            # XAPI returns HTTP 500 for a body it cannot parse.
            self.close_connection = True
            return self.send_bytes(500, ("%s\n" % error).encode())
        self.send_bytes(200, response, "text/xml")

    # Control endpoints

    def json_body(self):
        body = self.read_body(1024 * 1024)
        try:
            return json.loads(body or b"null")
        except ValueError:
            return None

    def add_fault(self):
        rule = self.json_body()
        if not isinstance(rule, dict) or not isinstance(rule.get("method"), str):
            return self.send_json(400, {"error": "expected a JSON object with "
                                                 "'method' and 'action'"})
        try:
            self.simulator.faults.add(rule["method"], rule.get("action"),
                                      error=rule.get("error"), times=rule.get("times"),
                                      seconds=rule.get("seconds"))
        except ValueError as error:
            return self.send_json(400, {"error": str(error)})
        self.send_json(201, self.simulator.faults.listing())

    def set_latency(self):
        document = self.json_body()
        seconds = document.get("seconds") if isinstance(document, dict) else None
        if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) \
                or seconds < 0:
            return self.send_json(400, {"error": "expected {\"seconds\": number >= 0}"})
        self.simulator.latency = float(seconds)
        self.send_json(200, {"seconds": self.simulator.latency})


def serve(simulator, addresses, port, ssl_context=None):
    """Bind every address on one port and serve each on a thread.

    ``port`` 0 picks a free port on the first address and uses it for the
    others. Return the servers; the caller stops them with ``shutdown()``.
    """
    servers = []
    try:
        for address in addresses:
            server = XapiServer((address, port), simulator, ssl_context)
            port = server.server_address[1]
            servers.append(server)
    except OSError:
        for server in servers:
            server.server_close()
        raise
    for server in servers:
        thread = threading.Thread(target=server.serve_forever,
                                  name="serve-%s" % server.host_address, daemon=True)
        thread.start()
    return servers


def is_loopback(address):
    try:
        packed = socket.inet_aton(address)
    except OSError:
        return False
    return packed[0] == 127 and address.count(".") == 3
