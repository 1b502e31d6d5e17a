"""Live usage updates: publish after commit, subscribe per tenant."""

from service.live.feed import UsageFeed, new_records, publish_usage, running_feeds

__all__ = ["UsageFeed", "new_records", "publish_usage", "running_feeds"]
