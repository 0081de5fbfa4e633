"""The API's notification endpoints: the account's own (``/me/notifications``) and an admin's
for any account (``/users/{user_id}/notifications``). Added to the router by ``routes``.

(No ``from __future__ import annotations``: FastAPI must see the dependency aliases as objects.)
"""

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends

from sealdrop import wire
from sealdrop.errors import InputError
from sealdrop.ids import UserId
from sealdrop.services.auth import Principal
from sealdrop.services.container import Services
from sealdrop.services.notifications import NotificationView


def add_notification_routes(
    router: APIRouter,
    services: Services,
    principal: Callable[..., Principal],
    admin: Callable[..., Principal],
) -> None:
    Caller = Annotated[Principal, Depends(principal)]  # noqa: N806 - a type alias
    Admin = Annotated[Principal, Depends(admin)]  # noqa: N806 - a type alias

    def change(user_id: UserId, body: wire.NotificationChange, actor: str) -> wire.Notifications:
        other = body.url if body.channel == "email" else body.email
        if other is not None or (body.channel == "off" and body.url is not None):
            raise InputError("give email with channel email, url with channel apprise, or neither")
        address = body.email if body.channel == "email" else body.url
        view = services.notifications.set(
            user_id, body.channel, actor, address=address, language=body.language
        )
        return _notifications(view)

    @router.get("/me/notifications", response_model=wire.Notifications, tags=["me"])
    def my_notifications(caller: Caller) -> wire.Notifications:
        """Where the caller's scheduled notices of new activity go."""
        return _notifications(services.notifications.get(caller.user.id))

    @router.put("/me/notifications", response_model=wire.Notifications, tags=["me"])
    def set_my_notifications(caller: Caller, body: wire.NotificationChange) -> wire.Notifications:
        """Send the caller's notices by e-mail, to an Apprise URL, or not at all. A notice says
        only that there is new activity: no source, no count, no content."""
        return change(caller.user.id, body, caller.user.username)

    @router.put("/users/{user_id}/notifications", response_model=wire.Notifications, tags=["admin"])
    def set_notifications(
        caller: Admin, user_id: str, body: wire.NotificationChange
    ) -> wire.Notifications:
        return change(UserId(user_id), body, caller.user.username)


def _notifications(view: NotificationView) -> wire.Notifications:
    return wire.Notifications(
        channel=view.channel, email=view.email, url_scheme=view.url_scheme, language=view.language
    )
