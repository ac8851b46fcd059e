"""TLS contexts and connection errors shared by the Xen and VMware adapters.

Both adapters take the same ``ca_bundle`` and ``insecure`` settings (see
``settings_helpers``) and reach their servers over HTTPS, so they build
their SSL contexts and translate their connection failures alike.
"""

import http.client
import socket
import ssl

from simplestack import errors


def create_tls_context(config):
    """Return a new SSL context for the ``ca_bundle`` and ``insecure``
    settings of ``config``.

    Raises OSError when the CA bundle cannot be read and ssl.SSLError when
    it contains no valid certificate.
    """
    context = ssl.create_default_context(cafile=config["ca_bundle"] or None)
    if config["insecure"]:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def load_tls_context(config, create=create_tls_context):
    """Return ``create(config)``, raising HypervisorUnreachable that names
    the ca_bundle setting when the CA bundle cannot be read or contains no
    valid certificate."""
    try:
        return create(config)
    except OSError as error:
        raise errors.HypervisorUnreachable(
            "cannot read the CA bundle %s of the ca_bundle setting: %s"
            % (config["ca_bundle"], error.strerror or error),
            original=error) from error
    except ssl.SSLError as error:
        raise errors.HypervisorUnreachable(
            "the CA bundle %s of the ca_bundle setting contains no valid "
            "certificate" % config["ca_bundle"],
            original=error) from error


def timeout_error(where, read_timeout, error):
    """Return the HypervisorTimeout of a reply from ``where`` (the server)
    that took longer than ``read_timeout`` seconds."""
    return errors.HypervisorTimeout(
        "%s did not answer within %s s" % (where, read_timeout),
        original=error)


def translate_connection_error(error, where, read_timeout):
    """Return the Simplestack error of a failure to reach a server (TLS,
    timeout, refused connection, DNS, socket or HTTP), or None for any
    other error. ``where`` names the server in the message."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return errors.HypervisorUnreachable(
            "%s is unreachable: TLS certificate verification failed "
            "(%s); set ca_bundle to the CA that signed it"
            % (where, error.verify_message), original=error)
    if isinstance(error, ssl.SSLError):
        return errors.HypervisorUnreachable(
            "%s is unreachable: the TLS handshake failed (%s)"
            % (where, error.reason), original=error)
    # socket.timeout is an alias of TimeoutError since Python 3.10.
    if isinstance(error, TimeoutError):
        return timeout_error(where, read_timeout, error)
    if isinstance(error, ConnectionRefusedError):
        return errors.HypervisorUnreachable(
            "%s is unreachable: connection refused" % where,
            original=error)
    if isinstance(error, socket.gaierror):
        return errors.HypervisorUnreachable(
            "%s is unreachable: the host name does not resolve" % where,
            original=error)
    if isinstance(error, (OSError, http.client.HTTPException)):
        return errors.HypervisorUnreachable(
            "%s is unreachable: %s" % (where, type(error).__name__),
            original=error)
    return None
