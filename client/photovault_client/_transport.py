"""What the client needs from a wire protocol: one unary call, and a lifecycle.

A transport sends the request with the given metadata (lower-case header names) and the
seconds left before the call's deadline (`time_left`), and returns the response or raises the
PhotoVaultError of the status (error_from_status), so the client never learns which protocol
carried the call.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from ._rpcs import Req, Resp, Rpc


class Transport(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def unary(
        self,
        rpc: Rpc[Req, Resp],
        request: Req,
        *,
        metadata: Mapping[str, str],
        time_left: float | None,
    ) -> Resp: ...
