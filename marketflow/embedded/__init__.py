"""Embedded PostgreSQL and Redis: real servers from wheels, usable only by marketflow.

Security model (docs/operations.md): loopback only, a generated password kept in a 0600
file, data directories 0700, and, when marketflow runs as root, the servers run as the
unprivileged service user. No permission changes outside ``MARKETFLOW_HOME``.
"""
