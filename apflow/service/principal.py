"""Who is calling: the subject and role of a verified token (or the CLI's local admin)."""

from __future__ import annotations

from dataclasses import dataclass

ROLES = ("admin", "user")


@dataclass(frozen=True)
class Principal:
    """A caller. Admins see every task; users only their own (`user_id` = token `sub`)."""

    user_id: str
    role: str = "user"

    @property
    def is_admin(self) -> bool:
        """True for the admin role."""
        return self.role == "admin"

    def owns(self, owner: str | None) -> bool:
        """May this caller see and change something owned by `owner`?"""
        return self.is_admin or owner == self.user_id


SYSTEM = Principal(user_id="system", role="admin")
