"""snapkv as a replication source for Redis replicas: feed, backlog, links, primary."""
