"""Live usage updates: published after commit (`UsageRecorded`), subscribed per tenant."""

from service.live.feed import UsageFeed, publish_usage, running_feeds

__all__ = ["UsageFeed", "publish_usage", "running_feeds"]
