"""A simulated XenServer pool that speaks XAPI's XML-RPC and HTTP handlers.

``Simulator`` (simulator.py) holds the state and answers calls; server.py
serves it over HTTP or HTTPS on loopback addresses.
"""
