"""Photon's storage backends, one module each, registered as `photon.backends` entry points.

Modules here import their database drivers lazily (inside methods), so listing the installed
backends and their configuration keys never needs a driver.
"""
