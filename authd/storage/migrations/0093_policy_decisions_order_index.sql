-- An identical order is looked up among the customer's decisions of the last window
-- (policy_decisions_customer: institution, customer, time), a handful of rows: the index by
-- fingerprint cost an index entry on every decision and was not the one the lookup used.
DROP INDEX policy_decisions_order;
