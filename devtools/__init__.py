"""Development tools (such as the local Stripe emulator).

Nothing in this package is ever imported by production code: it exists to run
and test the billing service on a laptop or in CI without reaching Stripe.
"""
