"""Test web sites served on loopback (see web.py)."""
