"""The background worker: plumbing that runs the tasks of service/jobs."""
