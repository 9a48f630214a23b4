"""Transfer authorisation rules (DOMAIN §2, §4, §5, §7): security grades and limits,
additional authentication and its exemptions, duplicate orders, inactivity, identity-input
counters, device information and the Korean calendar day.

Pure domain code: no gRPC, no storage, no drivers. Every number is a parameter whose default is
the cited value; ``authd/policy/settings.py`` makes them configuration.
"""
