"""Message formats a server front end and its client share, so that neither imports the other.

`amqp.py` holds Photon's AMQP protocol (docs/amqp.md): queue and exchange names, message types,
the replay request body, error replies; `amqp_groups.py` the consumer group messages. The server
(`photon.server.amqp`) reads requests and writes replies in these formats; the Python client
(`photon.client.amqp`, `photon.client.amqp_async`) writes requests and reads replies in them.
Only the core lies under this package.
"""
