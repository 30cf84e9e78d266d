from app.core.websocket.connection_manager import (
    ConnectionManager,
    SubscriptionLimitError,
    UserMismatchError,
    connection_manager,
)

__all__ = [
    "ConnectionManager",
    "SubscriptionLimitError",
    "UserMismatchError",
    "connection_manager",
]
