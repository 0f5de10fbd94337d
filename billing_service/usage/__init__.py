"""Usage metering: per-plan meter limits, the billing period, the ledger and overage reports."""
