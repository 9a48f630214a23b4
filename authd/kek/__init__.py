"""The key-encryption keys of a store: which exist, what is sealed under them, and their
rotation (``authd kek rotate``, docs/keys.md)."""
