"""billing.v1 messages and stubs, generated from protos/billing/v1 (`make proto`)."""
