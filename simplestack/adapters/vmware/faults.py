"""vSphere faults by Simplestack error class, and their public fields.

Faults are classified by their pyVmomi class (the nearest listed base
class wins), never by their message text.
"""

from pyVmomi import vim, vmodl
from pyVmomi.VmomiSupport import DataObject, ManagedObject

from simplestack import errors

#: Fault classes by error class; a subclass of a listed fault takes the
#: error of its nearest listed base class.
FAULT_ERRORS = (
    (vmodl.fault.ManagedObjectNotFound, errors.EntityNotFound),
    (vim.fault.NotFound, errors.EntityNotFound),
    (vim.fault.FileNotFound, errors.EntityNotFound),
    (vim.fault.InvalidLogin, errors.HypervisorAuthenticationFailed),
    (vim.fault.NotAuthenticated, errors.HypervisorAuthenticationFailed),
    (vmodl.fault.MethodNotFound, errors.FeatureNotImplemented),
    (vmodl.fault.NotSupported, errors.FeatureNotImplemented),
    (vmodl.fault.NotImplemented, errors.FeatureNotImplemented),
    (vim.fault.InvalidPowerState, errors.InvalidState),
    (vim.fault.ToolsUnavailable, errors.InvalidState),
    (vim.fault.InvalidState, errors.InvalidState),
    (vim.fault.TaskInProgress, errors.InvalidState),
    (vim.fault.DuplicateName, errors.Conflict),
    (vim.fault.AlreadyExists, errors.Conflict),
    (vim.fault.InvalidName, errors.InvalidArguments),
    (vmodl.fault.InvalidArgument, errors.InvalidArguments),
)

# Fields every fault inherits: messages, not facts to switch on.
_GENERIC_FIELDS = {"msg", "faultCause", "faultMessage"}


def classify(fault):
    """Return the Simplestack error class of a vSphere fault."""
    for fault_class in type(fault).__mro__:
        for listed, error_class in FAULT_ERRORS:
            if fault_class is listed:
                return error_class
    return errors.HypervisorError


def fault_name(fault):
    """Return the fault's vSphere type name, such as "InvalidPowerState"."""
    return type(fault)._wsdlName


def public_params(fault):
    """Return the fault's own fields as ``name=value`` strings.

    A managed object reference shows as its type only, so that no handle
    leaves the adapter; unset fields are left out.
    """
    params = []
    for prop in fault._GetPropertyList():
        if prop.name in _GENERIC_FIELDS:
            continue
        value = getattr(fault, prop.name, None)
        if isinstance(value, ManagedObject):
            value = value._wsdlName
        elif isinstance(value, DataObject):
            value = type(value)._wsdlName
        elif value is None or (isinstance(value, (list, str)) and
                               not value):
            continue
        params.append("%s=%s" % (prop.name, value))
    return params


def field(fault, name):
    """Return the fault's field ``name``, or None."""
    return getattr(fault, name, None)
