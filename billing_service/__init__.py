"""gRPC billing service: Stripe subscriptions behind internal APIs (package billing.v1)."""
