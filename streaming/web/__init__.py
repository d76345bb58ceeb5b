"""The dashboard server (``marketflow web``): pages, JSON API and the Redis → browser feed.

``server`` runs it, ``app`` assembles it, ``hub`` is the live feed, ``security`` the access
rules, ``api`` the JSON endpoints, ``queries`` every SQL statement, ``pages`` the page
registry; the front end is ``static/`` (sources) and ``frontend/`` (npm packages).
"""

from streaming.web.security import WebConfigError
from streaming.web.server import WebServer

__all__ = ["WebConfigError", "WebServer"]
