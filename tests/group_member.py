"""A consumer-group member in its own process, for the crash tests: prints each delivery it gets.

    python -m tests.group_member URL TOKEN GROUP MEMBER_ID ack|noack

Each delivery is printed as one line `<order-id> <attempt>` once received (and, with `ack`,
once its acknowledgement has been answered), so a parent that kills this process knows what it had.
"""

from __future__ import annotations

import sys

import httpx
import orjson


def main() -> None:
    url, token, group, member_id, mode = sys.argv[1:6]
    headers = {"Authorization": f"Token {token}"}
    with (
        httpx.Client(base_url=url, headers=headers, timeout=None) as client,
        client.stream("GET", f"/api/group/{group}/stream", params={"member": member_id}) as response,
    ):
        response.raise_for_status()
        for line in response.iter_lines():
            if not line:
                continue
            item = orjson.loads(line)
            if "event" not in item:
                continue
            order_id = item["event"]["order-id"]
            if mode == "ack":
                client.post(f"/api/group/{group}/ack", json={"order-ids": [order_id]}).raise_for_status()
            print(order_id, item["attempt"], flush=True)


if __name__ == "__main__":
    main()
