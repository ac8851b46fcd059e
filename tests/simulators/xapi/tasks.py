"""Tasks, ``Async.*`` calls and ``event.from``."""

import logging
import threading
import time

from . import wire
from .dispatch import check_ref, handler
from .errors import Failure
from .model import now
from .schema import CLASS_BY_LOWER, EPOCH, NULL_REF

log = logging.getLogger(__name__)

# event.from waits at most this long, whatever timeout the client sends.
MAX_EVENT_WAIT = 60.0


def new_task(sim, label, description=""):
    return sim.db.create("task", {
        "name_label": label, "name_description": description,
        "created": now(), "finished": EPOCH,
        "status": "pending", "resident_on": sim.pool_record()["master"],
        "progress": 0.0, "type": "<none/>", "result": "", "error_info": [],
        "allowed_operations": ["cancel"], "subtask_of": NULL_REF,
    })


def finish_task(sim, task, result=None, error=None):
    """Record a task's outcome; ``error`` is an ErrorDescription list."""
    db = sim.db
    if not db.exists("task", task):
        return
    if error is not None:
        cancelled = error[0] == "TASK_CANCELLED"
        db.set("task", task, status="cancelled" if cancelled else "failure",
               error_info=[str(e) for e in error], progress=1.0, finished=now(),
               allowed_operations=[])
    else:
        db.set("task", task, status="success", progress=1.0, finished=now(),
               result="" if result is None else wire.value_fragment(result),
               allowed_operations=[])


def task_cancelled(sim, task):
    with sim.db.lock:
        return (sim.db.exists("task", task)
                and sim.db.get("task", task)["status"] in ("cancelling", "cancelled"))


def start_async(sim, session, method, message, args):
    """Create a task, run the operation on a thread and return the task at once.

    A VM operation is first checked and listed in the VM's
    current_operations. Then the task waits ``sim.task_delay`` seconds, the
    time the work takes, in which it can be cancelled. Then the operation runs.
    """
    from .vm import VM_OPERATION_OF_MESSAGE, begin_operation, end_operation
    with sim.db.lock:
        task = new_task(sim, method)
        sim.running_tasks.add(task)
    operation = VM_OPERATION_OF_MESSAGE.get(message.name)
    vm = args[0] if operation else None

    def run():
        registered = False
        try:
            if operation:
                with sim.db.lock:
                    sim.db.get("VM", vm)
                    begin_operation(sim, vm, operation, task)
                    registered = True
            if sim.task_delay:
                time.sleep(sim.task_delay)
            with sim.db.lock:
                if registered:
                    end_operation(sim, vm, task)
                    registered = False
                if task_cancelled(sim, task):
                    raise Failure("TASK_CANCELLED", task)
                result = sim.run(message, session, args)
                finish_task(sim, task, result=result)
        except Failure as failure:
            with sim.db.lock:
                finish_task(sim, task, error=failure.description)
        except Exception:
            log.exception("internal error in %s", method)
            with sim.db.lock:
                finish_task(sim, task, error=["INTERNAL_ERROR",
                                              "simulator bug in %s" % method])
        finally:
            with sim.db.lock:
                if registered:
                    end_operation(sim, vm, task)
                sim.running_tasks.discard(task)

    threading.Thread(target=run, name="task-%s" % method, daemon=True).start()
    return task


@handler("task.create")
def task_create(sim, session, label, description):
    return new_task(sim, label, description)


@handler("task.destroy")
def task_destroy(sim, session, task):
    sim.db.get("task", task)
    sim.db.destroy("task", task)


@handler("task.cancel")
def task_cancel(sim, session, task):
    """Cancel a pending task.

    A task that an Async call or an HTTP transfer runs goes to
    ``cancelling``, and that operation ends it as ``cancelled``. A task made
    by task.create that nothing runs is cancelled at once.
    """
    record = sim.db.get("task", task)
    if record["status"] != "pending":
        raise Failure("OPERATION_NOT_ALLOWED",
                      "task %s is %s, not pending" % (record["uuid"], record["status"]))
    if task in sim.running_tasks:
        sim.db.set("task", task, status="cancelling", allowed_operations=[])
    else:
        finish_task(sim, task, error=["TASK_CANCELLED", task])


@handler("task.set_status")
def task_set_status(sim, session, task, value):
    sim.db.get("task", task)
    sim.db.set("task", task, status=value)


@handler("task.set_progress")
def task_set_progress(sim, session, task, value):
    sim.db.get("task", task)
    sim.db.set("task", task, progress=value)


@handler("task.set_result")
def task_set_result(sim, session, task, value):
    sim.db.get("task", task)
    sim.db.set("task", task, result=value)


@handler("task.set_error_info")
def task_set_error_info(sim, session, task, value):
    sim.db.get("task", task)
    sim.db.set("task", task, error_info=value)


# Events

def _token(counter):
    return "%020d" % counter


def _parse_token(token):
    if token == "":
        return None
    try:
        value = int(token.split(",")[0])
    except ValueError:
        raise Failure("EVENT_FROM_TOKEN_PARSE_FAILURE", token) from None
    if value < 0:
        raise Failure("EVENT_FROM_TOKEN_PARSE_FAILURE", token)
    return value


def _subscribed(classes):
    """Return the set of class names a subscription names ("*" is all)."""
    names = set()
    for item in classes:
        # "vm/OpaqueRef:..." subscribes to one object; the simulator widens
        # that to the whole class.
        cls = item.split("/", 1)[0].lower()
        if cls == "*":
            return {name for name in CLASS_BY_LOWER.values() if name != "session"}
        if cls in CLASS_BY_LOWER:
            names.add(CLASS_BY_LOWER[cls])
    return names


def _event(sim, event_id, cls, ref, operation):
    event = {"id": event_id, "timestamp": "%.6f" % time.time(),
             "class": cls.lower(), "operation": operation, "ref": ref}
    if operation != "del":
        # Marshalled here, under the database lock: the text is that of
        # the record as it is now, and an unchanged record's text is reused.
        event["snapshot"] = sim.marshalled.record(cls, ref)
    return event


def _collect(sim, since, classes):
    db = sim.db
    if since is None:
        events = [_event(sim, db.event_counter, cls, ref, "add")
                  for cls in sorted(classes) for ref in db.all(cls)]
        return events
    latest = {}
    for event_id, cls, ref, operation in db.events_after(since):
        if cls in classes:
            latest[(cls, ref)] = event_id
    events = []
    for (cls, ref), event_id in sorted(latest.items(), key=lambda item: item[1]):
        if db.exists(cls, ref):
            created = db.created_at.get(ref, 0)
            events.append(_event(sim, event_id, cls, ref,
                                 "add" if created > since else "mod"))
        elif db.created_at.get(ref, 0) <= since:
            events.append(_event(sim, event_id, cls, ref, "del"))
    return events


@handler("event.from")
def event_from(sim, session, classes, token, timeout):
    """Return the changes since ``token``, waiting up to ``timeout`` seconds for one."""
    since = _parse_token(token)
    wanted = _subscribed(classes)
    deadline = time.monotonic() + max(0.0, min(timeout, MAX_EVENT_WAIT))
    db = sim.db
    while True:
        events = _collect(sim, since, wanted)
        remaining = deadline - time.monotonic()
        if events or since is None or remaining <= 0:
            break
        # Waiting releases the database lock for other calls.
        db.changed.wait(remaining)
    counts = {cls.lower(): wire.Int32(len(db.all(cls))) for cls in wanted}
    return {"events": events, "valid_ref_counts": counts,
            "token": _token(db.event_counter)}


@handler("event.get_current_id")
def event_get_current_id(sim, session):
    return sim.db.event_counter


@handler("event.inject")
def event_inject(sim, session, cls, ref):
    real = CLASS_BY_LOWER.get(cls.lower())
    if real is None:
        raise Failure("HANDLE_INVALID", cls, ref)
    check_ref(sim.db, real, ref)
    sim.db.set(real, ref)
    return _token(sim.db.event_counter)
