"""What tests share: database and Redis fixtures, service launchers, certificates and fixtures'
paths.
"""
