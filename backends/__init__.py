"""Photon's storage backends, registered as `photon.backends` entry points: one module each, the
SQL backends a package by dialect (`sql/`), and the redis backend's Lua scripts beside it.

Modules here import their database drivers lazily (inside methods), so listing the installed
backends and their configuration keys never needs a driver.
"""
