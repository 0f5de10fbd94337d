"""Usage metering: per-plan meter limits, the billing period, the ledger (in the database, with
its counters optionally in Redis) and overage reports."""
