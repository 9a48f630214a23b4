"""SoftHSM2 tokens standing in for customers' HSM security tokens."""
