"""Live usage updates: announced by every write of `UsageRecorded`, subscribed per tenant."""

from service.live.feed import UsageFeed, publish_here, running_feeds

__all__ = ["UsageFeed", "publish_here", "running_feeds"]
