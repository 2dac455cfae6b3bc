"""Every use of a library's private API, one module per library, each with its canary test in tests/_compat/.

A shim names the versions it was written for. When a library changes the behaviour a shim relies on,
its canary test fails and names the shim, so an upgrade breaks loudly instead of silently.
"""
