"""Who may use one AuthSession at a time (our ``authSession.exclusive``).

Attempts share a session by default: any number use it at once, as on Intuned. An attempt that
asks for exclusive use gets it only when no other attempt holds the session, and is refused
otherwise (``auth-session-already-in-use``) rather than queued, so that asking for exclusivity
never delays it behind a stream of shared runs. While an exclusive attempt holds the session,
shared attempts wait for it to end: they never see that refusal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Decision = Literal["granted", "wait", "refused"]


@dataclass
class SessionUse:
    """The holders of one session: how many shared attempts, and whether an exclusive one."""

    shared: int = 0
    exclusive: bool = False

    def decide(self, exclusive: bool) -> Decision:
        if exclusive:
            return "refused" if self.shared or self.exclusive else "granted"
        return "wait" if self.exclusive else "granted"

    def take(self, exclusive: bool) -> None:
        if self.decide(exclusive) != "granted":
            raise ValueError("the session is not free for this use")
        if exclusive:
            self.exclusive = True
        else:
            self.shared += 1

    def give_back(self, exclusive: bool) -> None:
        if exclusive:
            if not self.exclusive:
                raise ValueError("no exclusive use to give back")
            self.exclusive = False
        else:
            if self.shared == 0:
                raise ValueError("no shared use to give back")
            self.shared -= 1

    @property
    def idle(self) -> bool:
        return self.shared == 0 and not self.exclusive
