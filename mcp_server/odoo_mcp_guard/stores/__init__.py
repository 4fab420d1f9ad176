"""The store, split into ports (ports.py) over one database layer (engines.py)."""
