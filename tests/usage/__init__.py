"""Usage metering: ConsumeUsage, RefundUsage and GetUsage, periods, replicas and overage
reporting.
"""
