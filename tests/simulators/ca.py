"""The development certificate authority shared by the hypervisor simulators.

Created once, with trustme, under ``.state/dev-ca/`` in the checkout (git
ignores ``/.state/``):

    ca.pem           the CA certificate: the bundle that clients trust
    ca-key.pem       the CA's private key, to issue certificates for other
                     loopback addresses
    server.pem       a server certificate for DEFAULT_IDENTITIES, then the CA
    server-key.pem   its private key
    server-<identities>.pem, server-<identities>-key.pem
                     server certificates for other loopback addresses,
                     issued on request for simulators that read files

Files are written under temporary names and renamed, and a lock file
serialises creation, so two simulators that start at once share one CA.
"""

import fcntl
import os
import ssl
import tempfile

import trustme

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CA_DIR = os.path.join(ROOT, ".state", "dev-ca")

# Names the stored server certificate is valid for: the loopback addresses
# the simulators listen on by default (a pool master and a member).
DEFAULT_IDENTITIES = ("127.0.0.1", "127.0.0.2", "localhost", "::1")

_FILES = ("ca.pem", "ca-key.pem", "server.pem", "server-key.pem")


def ca_bundle_path():
    """Return the path of the CA bundle, creating the CA first if needed."""
    ensure_dev_ca()
    return os.path.join(CA_DIR, "ca.pem")


def server_cert_paths():
    """Return (certificate chain, private key) of the stored server certificate."""
    ensure_dev_ca()
    return (os.path.join(CA_DIR, "server.pem"), os.path.join(CA_DIR, "server-key.pem"))


def ensure_dev_ca():
    if all(os.path.exists(os.path.join(CA_DIR, name)) for name in _FILES):
        return
    os.makedirs(CA_DIR, mode=0o700, exist_ok=True)
    with open(os.path.join(CA_DIR, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        # Another process may have finished while this one waited.
        if all(os.path.exists(os.path.join(CA_DIR, name)) for name in _FILES):
            return
        ca = trustme.CA(organization_name="Simplestack development CA")
        server = ca.issue_cert(*DEFAULT_IDENTITIES)
        # Keys first, the bundle last: a reader that finds ca.pem finds all.
        _write("ca-key.pem", ca.private_key_pem.bytes(), private=True)
        _write("server-key.pem", server.private_key_pem.bytes(), private=True)
        _write("server.pem", b"".join(blob.bytes() for blob in server.cert_chain_pems))
        _write("ca.pem", ca.cert_pem.bytes())


def _write(name, data, private=False):
    descriptor, temporary = tempfile.mkstemp(dir=CA_DIR, prefix=".%s." % name)
    try:
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(data)
        os.chmod(temporary, 0o600 if private else 0o644)
        os.replace(temporary, os.path.join(CA_DIR, name))
    except BaseException:
        os.unlink(temporary)
        raise


def server_cert_files(identities):
    """Return (certificate chain, private key) paths of a server certificate.

    For a program that loads its certificate from files, such as the vSphere
    simulator. The stored certificate serves the default identities. Other
    identities get a pair issued by the same CA and kept as
    ``server-<identities>.pem`` and ``server-<identities>-key.pem``.
    """
    if set(identities) <= set(DEFAULT_IDENTITIES):
        return server_cert_paths()
    stem = "server-" + "_".join(sorted(identities))
    if any(character in stem for character in "/\\") or stem.startswith("."):
        raise ValueError("invalid certificate identities: %r" % (identities,))
    paths = (os.path.join(CA_DIR, stem + ".pem"), os.path.join(CA_DIR, stem + "-key.pem"))
    ensure_dev_ca()
    if _issued_by_current_ca(paths[0]):
        return paths
    with open(os.path.join(CA_DIR, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _issued_by_current_ca(paths[0]):
            server = _load_ca().issue_cert(*identities)
            # The key first: a reader that finds the certificate finds both.
            _write(stem + "-key.pem", server.private_key_pem.bytes(), private=True)
            _write(stem + ".pem", b"".join(blob.bytes() for blob in server.cert_chain_pems))
    return paths


def _issued_by_current_ca(path):
    # A certificate older than ca.pem was issued by a CA since replaced.
    try:
        return os.path.getmtime(path) >= os.path.getmtime(os.path.join(CA_DIR, "ca.pem"))
    except FileNotFoundError:
        return False


def _load_ca():
    with open(os.path.join(CA_DIR, "ca.pem"), "rb") as cert, \
            open(os.path.join(CA_DIR, "ca-key.pem"), "rb") as key:
        return trustme.CA.from_pem(cert.read(), key.read())


def server_context(identities=DEFAULT_IDENTITIES):
    """Return a server-side SSLContext with a certificate for ``identities``.

    The stored certificate serves the default identities; other loopback
    addresses get a certificate issued in memory by the same CA.
    """
    ensure_dev_ca()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if set(identities) <= set(DEFAULT_IDENTITIES):
        context.load_cert_chain(*server_cert_paths())
        return context
    _load_ca().issue_cert(*identities).configure_cert(context)
    return context


def client_context():
    """Return a client-side SSLContext that trusts the development CA."""
    return ssl.create_default_context(cafile=ca_bundle_path())
