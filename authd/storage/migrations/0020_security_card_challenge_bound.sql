-- A card keeps its most recent challenges only ([security_card] max_challenges_per_card):
-- starting one more deletes the card's oldest, found through this index.
CREATE INDEX security_card_challenges_card ON security_card_challenges (serial, issued_at);
