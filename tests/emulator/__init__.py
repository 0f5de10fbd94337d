"""The local Stripe emulator: its objects match Stripe's fixtures, its webhooks, clock and
meters.
"""
