"""XAPI failures: an error code and its string parameters."""

from .schema import ERRORS

# Codes whose parameters on the wire differ from the documented ones in
# errors.json, as XAPI's server code raises them (xapi-project/xen-api,
# ocaml/xapi/xapi_vm_lifecycle.ml, and a real host's failed login).
WIRE_PARAMS = {
    # Documented without parameters; a real host sends the user name and
    # a message.
    "SESSION_AUTHENTICATION_FAILED": ["user", "message"],
    # Documented as [vm]; the lifecycle check adds the refused operation.
    "VM_IS_TEMPLATE": ["vm", "operation"],
    # Raised by the lifecycle checks but not in the documented table.
    "VM_IS_SNAPSHOT": ["vm", "operation"],
    "ONLY_PROVISION_TEMPLATE": [],
    "ONLY_REVERT_SNAPSHOT": [],
    # A storage backend failure: real SR drivers report a full SR this way.
    "SR_BACKEND_FAILURE_44": ["status", "stdout", "stderr"],
}


# Codes whose one documented parameter is a list that the wire carries as
# one string per item (ocaml/xapi/xapi_network.ml raises them so).
VARIADIC = {"NETWORK_CONTAINS_VIF", "NETWORK_CONTAINS_PIF"}


class Failure(Exception):
    """An XAPI error, sent as ``ErrorDescription = [code, *params]``."""

    def __init__(self, code, *params):
        expected = WIRE_PARAMS.get(code, ERRORS.get(code))
        if expected is None:
            raise ValueError("unknown XAPI error code %r" % code)
        variadic = code in VARIADIC and len(params) >= 1
        if code != "INTERNAL_ERROR" and not variadic and len(params) != len(expected):
            raise ValueError("XAPI error %s takes %d parameters (%s), got %r"
                             % (code, len(expected), ", ".join(expected),
                                params))
        super().__init__(code, *params)
        self.code = code
        self.params = [str(param) for param in params]

    @property
    def description(self):
        return [self.code] + self.params

