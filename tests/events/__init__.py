"""ApplyStripeEvent: exactly once, ordering, the writer, invoices, audit chains and malformed
events.
"""
