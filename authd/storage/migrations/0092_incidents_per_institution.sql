-- The incident list is fed by every institution (CA art. 14): each institution keeps its own
-- live entry of an identifier, so one institution withdrawing its entry leaves another's in
-- force. A terminal is refused while any institution's entry of one of its identifiers lives.
DROP INDEX policy_incidents_live;
CREATE UNIQUE INDEX policy_incidents_live ON policy_incidents (field, value, reported_by)
    WHERE withdrawn_at IS NULL;
