"""What the tests share: ``support.guard`` runs the real guard (CLI, stdio, HTTP, proxy) and reads
its store; ``support.live`` gives the running Odoo of each series (the ``live`` module fixture)
and a connection a person shares with the Agent there. ``conftest.py`` keeps only fixtures and
hooks; tests import helpers from here."""
