"""The simulated pool: state, sessions, calls, tasks, statistics and faults."""

import collections
import ipaddress
import logging
import threading
import time
import urllib.parse

from . import dispatch, wire
from . import operations, tasks, vm  # noqa: F401  (they register handlers)
from .disks import DiskStore
from .errors import Failure
from .marshalled import RecordCache
from .model import Database, now

log = logging.getLogger(__name__)

# A host keeps at most this many sessions per originator (or per non-root
# user), and this many without an originator, evicting the least recently
# active ones. A real host evicts every 30 s; the simulator evicts at once,
# at the login that goes over the limit.
MAX_SESSIONS_PER_ORIGINATOR = 500
MAX_ANONYMOUS_SESSIONS = 400


class Stats:
    """Calls per method and sessions per originator, for GET /simulator/stats."""

    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        with self.lock:
            self.calls = collections.Counter()
            self.http = collections.Counter()
            self.logins = collections.Counter()
            self.logouts = collections.Counter()

    def count_call(self, method):
        with self.lock:
            self.calls[method] += 1

    def count_http(self, name):
        with self.lock:
            self.http[name] += 1


class Faults:
    """Rules that make calls fail or hang, for fault tests (POST /simulator/faults)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.rules = []
        self.cleared = threading.Event()

    def add(self, method, action, error=None, times=None, seconds=None):
        if action not in ("fail", "hang"):
            raise ValueError("action must be 'fail' or 'hang', got %r" % (action,))
        if action == "fail" and not (isinstance(error, list) and error
                                     and all(isinstance(e, str) for e in error)):
            raise ValueError("a 'fail' fault needs error: [CODE, param, ...] as strings")
        if action == "fail" and error[0] == "HOST_IS_SLAVE" and \
                not _names_loopback(error[1:2]):
            # The service follows HOST_IS_SLAVE to the address it names, so
            # a fault must not send it off this machine.
            raise ValueError("a HOST_IS_SLAVE fault needs a loopback master "
                             "address (127.x.y.z, ::1 or localhost), got %r"
                             % (error[1:2],))
        if times is not None and (not isinstance(times, int) or times < 1):
            raise ValueError("times must be a positive integer or absent")
        if seconds is not None and not isinstance(seconds, (int, float)):
            raise ValueError("seconds must be a number or absent")
        with self.lock:
            self.cleared.clear()
            self.rules.append({"method": method, "action": action, "error": error,
                               "times": times, "seconds": seconds})

    def clear(self):
        with self.lock:
            self.rules = []
            self.cleared.set()

    def listing(self):
        with self.lock:
            return [dict(rule) for rule in self.rules]

    def take(self, method):
        """Return the rule that applies to this call, using up one of its times."""
        with self.lock:
            for rule in self.rules:
                if rule["method"] != method:
                    continue
                if rule["times"] is not None:
                    rule["times"] -= 1
                    if rule["times"] == 0:
                        self.rules.remove(rule)
                return dict(rule)
        return None

    def apply(self, method):
        rule = self.take(method)
        if rule is None:
            return
        if rule["action"] == "hang":
            # Hang until the time runs out or the faults are cleared.
            self.cleared.wait(rule["seconds"])
            return
        raise _InjectedFailure(rule["error"])


def _names_loopback(params):
    """Tell whether ``params`` is [address] or [address:port] of loopback."""
    if len(params) != 1:
        return False
    host = urllib.parse.urlsplit("//" + params[0]).hostname
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


class _InjectedFailure(Exception):
    def __init__(self, description):
        super().__init__(*description)
        self.description = list(description)


class Simulator:
    def __init__(self, master_address="127.0.0.1", member_address="127.0.0.2",
                 vms=0, username="root", password="simulator", latency=0.0,
                 login_failure_delay=0.0, task_delay=0.0, disk_dir=None,
                 dynamic_memory_control=True):
        self.db = Database()
        self.marshalled = RecordCache(self.db)
        self.stats = Stats()
        self.faults = Faults()
        self.latency = latency
        self.login_failure_delay = login_failure_delay
        self.task_delay = task_delay
        self.dynamic_memory_control = dynamic_memory_control
        self.running_tasks = set()
        self.last_domid = 0
        self.username = username
        self.password = password
        self.disks = DiskStore(disk_dir)
        self.host_by_address = {}
        self.master_address = master_address
        from .seed import seed_pool
        with self.db.lock:
            seed_pool(self, master_address, member_address, vms)

    def close(self):
        self.disks.close()

    # Calls

    def handle_xmlrpc(self, body, address):
        """Run one XML-RPC request and return the response body; raise ValueError if it is malformed."""
        method, params = wire.parse_call(body)
        if self.latency:
            time.sleep(self.latency)
        self.stats.count_call(method)
        try:
            value = self.call(method, params, address)
        except Failure as failure:
            return wire.failure(failure.description)
        except _InjectedFailure as injected:
            return wire.failure(injected.description)
        except Exception:
            log.exception("internal error in %s", method)
            return wire.failure(["INTERNAL_ERROR", "simulator bug in %s" % method])
        return wire.success(value)

    def call(self, method, params, address):
        message, is_async = dispatch.lookup(method)
        counts = dispatch.expected_counts(message)
        if len(params) not in counts:
            raise Failure("MESSAGE_PARAMETER_COUNT_MISMATCH", method,
                          counts[-1], len(params))

        host = self.host_by_address.get(address)
        if message.name in dispatch.SESSIONLESS:
            self.faults.apply(method)
            return self.login(host, address, *params)
        session = params[0]
        with self.db.lock:
            self.check_session(session, host)
        self.faults.apply(method)

        if message.name == "session.logout":
            with self.db.lock:
                self.logout(session)
            return None
        args = dispatch.unmarshal(message, params[1:])
        if is_async:
            from .tasks import start_async
            return start_async(self, session, method, message, args)
        with self.db.lock:
            return self.run(message, session, args)

    def run(self, message, session, args):
        """Run an operation; the caller holds the database lock."""
        function = dispatch.HANDLERS.get(message.name)
        if function is not None:
            return function(self, session, *args)
        if message.removed:
            raise Failure("MESSAGE_REMOVED")
        if message.implicit:
            return dispatch.run_implicit(self, message, args)
        raise Failure("INTERNAL_ERROR", "%s is not simulated" % message.name)

    # Sessions

    def is_master(self, host):
        return host is not None and host == self.pool_record()["master"]

    def pool_ref(self):
        return self.db.all("pool")[0]

    def pool_record(self):
        return self.db.get("pool", self.pool_ref())

    def check_session(self, session, host):
        if not self.is_master(host):
            raise Failure("HOST_IS_SLAVE", self.master_address)
        if not isinstance(session, str) or not self.db.exists("session", session):
            raise Failure("SESSION_INVALID", session)
        self.db.get("session", session)["last_active"] = now()

    def login(self, host, address, username, password, version="", originator=""):
        if not self.is_master(host):
            raise Failure("HOST_IS_SLAVE", self.master_address)
        arguments = (("uname", username), ("pwd", password), ("version", version),
                     ("originator", originator))
        for name, value in arguments:
            if not isinstance(value, str):
                raise Failure("FIELD_TYPE_ERROR", name)
        if username != self.username or password != self.password:
            if self.login_failure_delay:
                time.sleep(self.login_failure_delay)
            raise Failure("SESSION_AUTHENTICATION_FAILED", username,
                          "Authentication failure")
        with self.db.lock:
            ref = self.db.create("session", {
                "this_host": host,
                "last_active": now(),
                "validation_time": now(),
                "pool": False,
                "is_local_superuser": True,
                "originator": originator,
                "auth_user_name": username,
            })
            with self.stats.lock:
                self.stats.logins[originator] += 1
            self._evict_sessions(originator)
        return ref

    def _evict_sessions(self, originator):
        limit = MAX_SESSIONS_PER_ORIGINATOR if originator else MAX_ANONYMOUS_SESSIONS
        mine = [ref for ref in self.db.all("session")
                if self.db.get("session", ref)["originator"] == originator]
        if len(mine) <= limit:
            return
        mine.sort(key=lambda ref: self.db.get("session", ref)["last_active"])
        for ref in mine[:len(mine) - limit]:
            log.info("evicting session %s of originator %r", ref, originator)
            self.db.destroy("session", ref)

    def logout(self, session):
        originator = self.db.get("session", session)["originator"]
        self.db.destroy("session", session)
        with self.stats.lock:
            self.stats.logouts[originator] += 1

    def open_sessions(self):
        with self.db.lock:
            counts = collections.Counter(
                self.db.get("session", ref)["originator"]
                for ref in self.db.all("session"))
        return dict(counts)

    def stats_document(self):
        with self.stats.lock:
            calls = dict(self.stats.calls)
            document = {
                "calls": calls,
                "total_calls": sum(calls.values()),
                "http": dict(self.stats.http),
                "logins": dict(self.stats.logins),
                "logouts": dict(self.stats.logouts),
            }
        sessions = self.open_sessions()
        document["sessions"] = sessions
        document["open_sessions"] = sum(sessions.values())
        return document

    # Object creation shared by the generated create messages and handlers

    def create_object(self, cls, values):
        from .operations import create_object
        return create_object(self, cls, values)
