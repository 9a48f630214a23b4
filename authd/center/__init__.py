"""The branch node's link to the center cluster (``[center]``): mTLS client, failover, health,
and the forwarding of center calls made at a branch."""
