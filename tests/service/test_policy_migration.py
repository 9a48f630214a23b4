"""0091 removes the policy's own media links: what they held that the customer model lacked
moves to where it belongs, on SQLite and PostgreSQL, with a store written before."""

from __future__ import annotations

from authd.storage import migrate, open_database

TOKEN_KEY = b"0Y0\x13\x06\x07*\x86H\xce=\x02\x01token-key"
CARD_KEY = b"0Y0\x13\x06\x07*\x86H\xce=\x02\x01card-key"


def _old_store(tx) -> None:  # type: ignore[no-untyped-def]
    for serial, customer in (("OTP-OLD", ""), ("OTP-NAMED", "kim"), ("OTP-UNLINKED", "")):
        tx.execute("INSERT INTO otp_devices (serial, kind, digits, period, algorithm, seed,"
                   " last_counter, drift, state, failures, issuer, replaced_by,"
                   " warranty_until, created_at, updated_at) VALUES"
                   " (?, 'hotp', 6, 0, 'sha1', ?, 0, 0, 'active', 0, 'bank-a', NULL, 0, 1, 1)",
                   (serial, b"sealed"))
        tx.execute("INSERT INTO otp_registrations (serial, institution, channel,"
                   " registered_at, failures_here, customer_id) VALUES"
                   " (?, 'bank-a', 'branch', 1, 0, ?)", (serial, customer))
    for table, column, serial, active in (
            ("token_registrations", "token_serial", "TOKEN-1", 1),
            ("token_registrations", "token_serial", "TOKEN-ENDED", 0),
            ("smartcard_registrations", "card_serial", "CARD-1", 1)):
        tx.execute(f"INSERT INTO {table} (id, institution, {column}, customer_id, terminal,"
                   " operator, registered_at, deregistered_at, active) VALUES"
                   " (?, 'bank-a', ?, 'kim', 'pc', 'lee', 1, NULL, ?)",
                   (f"reg-{serial}", serial, active))
    links = [("otp", "OTP-OLD", b""), ("otp", "OTP-NAMED", b""), ("token", "TOKEN-1", TOKEN_KEY),
             ("token", "TOKEN-ENDED", TOKEN_KEY), ("smartcard", "CARD-1", CARD_KEY)]
    tx.executemany("INSERT INTO policy_media_links (institution, customer_id, medium, serial,"
                   " public_key, linked_at) VALUES ('bank-a', ?, ?, ?, ?, 1)",
                   [("lee" if serial == "OTP-NAMED" else "kim", medium, serial, key)
                    for medium, serial, key in links])


def test_links_move_to_the_registrations_and_go(store_url: str):
    db = open_database(store_url)
    try:
        migrate(db, upto=90)
        db.run(_old_store)
        assert 91 in migrate(db)

        def read(tx):  # type: ignore[no-untyped-def]
            otp = dict(tx.all("SELECT serial, customer_id FROM otp_registrations"))
            tokens = {r[0]: None if r[1] is None else bytes(r[1]) for r in tx.all(
                "SELECT token_serial, public_key FROM token_registrations")}
            cards = {r[0]: bytes(r[1]) for r in tx.all(
                "SELECT card_serial, public_key FROM smartcard_registrations")}
            return otp, tokens, cards

        otp, tokens, cards = db.run(read, write=False)
        # a registration without a customer takes the linked one; a named one keeps its own
        assert otp == {"OTP-OLD": "kim", "OTP-NAMED": "kim", "OTP-UNLINKED": ""}
        assert tokens == {"TOKEN-1": TOKEN_KEY, "TOKEN-ENDED": None}
        assert cards == {"CARD-1": CARD_KEY}
        tables = db.run(lambda tx: tx.all(
            "SELECT table_name FROM information_schema.tables WHERE table_name ="
            " 'policy_media_links'" if tx.dialect == "postgresql" else
            "SELECT name FROM sqlite_master WHERE name = 'policy_media_links'"), write=False)
        assert tables == []
    finally:
        db.close()
