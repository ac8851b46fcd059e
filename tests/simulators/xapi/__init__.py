"""A simulated XenServer pool that speaks XAPI's XML-RPC and HTTP handlers.

``Simulator`` (simulator.py) keeps the state and runs the calls; server.py
serves it over HTTP or HTTPS on loopback addresses.
"""
