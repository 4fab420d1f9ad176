"""What the tests share: ``support.guard`` runs the real guard (CLI, stdio, HTTP, proxy) and reads
its store. ``conftest.py`` keeps only fixtures and hooks; tests import helpers from here."""
