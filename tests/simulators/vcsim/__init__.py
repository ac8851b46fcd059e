"""govmomi's vSphere API simulator, run by a launcher of ours (main.go).

build.py builds the launcher from Debian's packages and forms its command
line; tests/simulators/vcsim_fixtures.py runs it for tests, and
``python -m tests.simulators vcsim`` runs it in the foreground.
"""
