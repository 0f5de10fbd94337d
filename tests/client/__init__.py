"""The billing-client package: channels, retries, names from the proto and authentication."""
