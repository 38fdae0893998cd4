"""The core of Photon: events, errors, settings, the storage contract and registry, the store and
its committer, subscriptions, request parsing and the stream rules every front end shares.

Nothing here imports a front end (`photon.server`, `photon.client`, `photon.cli`).
"""
