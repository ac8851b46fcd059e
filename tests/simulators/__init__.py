"""Hypervisor simulators that the tests and demos talk to over the wire.

``python -m tests.simulators xapi --listen 127.0.0.1:PORT`` starts the XAPI
simulator; ``tests.simulators.fixtures`` starts it for pytest; ``ca`` manages
the development certificate authority that every simulator uses.
"""
