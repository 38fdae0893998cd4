"""Test cases shipped with Photon, for backends written elsewhere: see `photon.testing.backend`."""
