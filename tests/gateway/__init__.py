"""The webhook gateway over HTTP: signatures, body limits, forwarding verdicts, faults and end-
to-end flows.
"""
