"""What the tests share: ``support.guard`` runs the real guard (CLI, stdio, HTTP, proxy) and reads
its store; ``support.raw_stdio`` speaks raw JSON-RPC lines to ``serve`` over stdio;
``support.server_binding`` holds the server-name tests' approval scenario and one-line errors;
``support.live`` gives the running Odoo of each series (the ``live`` module fixture)
and a connection a person shares with the Agent there. ``conftest.py`` keeps only fixtures and
hooks; tests import helpers from here."""
