"""The bundled demo model (see build.py)."""
