"""The service's RPCs against the Stripe emulator and localstripe: checkout, portal, plans,
seats, trials, deadlines, shutdown, reflection.
"""
